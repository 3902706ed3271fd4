"""nudgeflow: the kernel every room shares (version, errors, money, time, composition root)."""

from __future__ import annotations

__version__ = "0.1.0"
