"""``web.asgi:app``: the service built from the environment and ``.env``, for running under
an ASGI server of the operator's choice (``uvicorn web.asgi:app``, gunicorn with uvicorn
workers). ``nudgeflow web`` serves the same application."""

from __future__ import annotations

from web.app import create_app

app = create_app(worker_process=True)
