"""``nudgeflow web``: the HTTP service (unsubscribes, preferences, VIP invites, the providers'
webhooks and the ingestion API) under uvicorn."""

from __future__ import annotations

import typer

from cli.context import console, err_console, process_app


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
    console.print(f"serving http://{bind_host}:{bind_port} (Ctrl-C stops)")
    console.print(f"links in emails point at {settings.public_base_url}")
    uvicorn.run(
        create_app(lambda: app),
        host=bind_host,
        port=bind_port,
        log_level="info",
        proxy_headers=True,
        server_header=False,
    )
