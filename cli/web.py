"""``nudgeflow web``: the HTTP service (unsubscribes, preferences, VIP invites, the providers'
webhooks and the ingestion API) under uvicorn."""

from __future__ import annotations

import contextlib
import socket

import typer

from cli.context import console, err_console, process_app
from nudgeflow.errors import SettingsError


def web(
    host: str | None = typer.Option(
        None, "--host", metavar="HOST", help="Address to listen on (default: NUDGEFLOW_WEB__HOST)."
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        metavar="PORT",
        min=1,
        max=65535,
        help="Port to listen on (default: NUDGEFLOW_WEB__PORT, else 8000).",
    ),
) -> None:
    """Serve the pages the emails link to, the SendGrid and Stripe webhooks and the
    ingestion API, until Ctrl-C.

    Run it next to the nightly flow, behind a reverse proxy that terminates TLS for
    NUDGEFLOW_PUBLIC_BASE_URL (docs/operations.md).
    """
    import uvicorn

    from web.app import create_app

    app = process_app()
    settings = app.settings
    _ = app.engine  # reach and migrate the database now: a bad URL fails before listening
    warning = app.signing_key_warning()
    if warning is not None:
        err_console.print(warning)
    bind_host = host if host is not None else settings.web.host
    bind_port = port if port is not None else settings.web.port
    listening = listen(bind_host, bind_port)
    console.print(f"serving http://{bind_host}:{bind_port} (Ctrl-C stops)")
    console.print(f"links in emails point at {settings.public_base_url}")
    config = uvicorn.Config(
        create_app(lambda: app, worker_process=True),
        log_level="info",
        proxy_headers=True,
        server_header=False,
    )
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises it: the way to stop the
    # service, not a failure.
    with listening, contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[listening])
    console.print("stopped")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for uvicorn to serve on: bound here, so that a port
    in use or an address this machine does not have is one line naming the setting, not
    uvicorn's log of a failed start-up."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise SettingsError(
            f"NUDGEFLOW_WEB__HOST / --host: cannot listen on {host!r} ({exc})"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise SettingsError(
            f"NUDGEFLOW_WEB__PORT / --port: cannot listen on {host}:{port}: {reason.lower()}"
            " (another nudgeflow web, or another server, may hold it; choose another port)"
        ) from None
    return sock
