"""Prefect's own settings that nudgeflow needs set before ``prefect`` is first imported."""

from __future__ import annotations

import os

# A fresh ephemeral API server needs 20–24 s to start on 2 cores; Prefect's default
# start-up timeout is 20 s.
_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def prepare_prefect_environment() -> None:
    """Fill in defaults the user has not set; call before importing ``prefect``."""
    for name, value in _DEFAULTS.items():
        os.environ.setdefault(name, value)


def prefect_api_url() -> str | None:
    """The API server Prefect will talk to, or ``None`` when it will start an ephemeral one."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None
