"""What every command shares: the process-wide ``App`` and the consoles."""

from __future__ import annotations

from rich.console import Console

from nudgeflow.bootstrap import get_app

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

__all__ = ["console", "err_console", "get_app"]
