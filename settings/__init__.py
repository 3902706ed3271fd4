"""Settings: the only code that reads the environment (``NUDGEFLOW_*`` variables and ``.env``)."""

from __future__ import annotations

from settings.app import AppSettings, load_settings

__all__ = ["AppSettings", "load_settings"]
