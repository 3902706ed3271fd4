"""The ingestion API: ``POST /api/v1/track``, ``/api/v1/identify`` and ``/api/v1/batch`` in
Segment's spec shape (docs/ingest-api.md), with a bearer key from
``NUDGEFLOW_INGEST__API_KEYS``.

The key is compared with every configured key in constant time (``hmac.compare_digest``,
no early exit), and never logged or echoed. The items are checked as an import checks its
rows (``inbound.ingest_items``); the accepted ones are stored in the inbox in one INSERT and
committed before the answer, then worked at once (so a ``track`` right after an
``identify`` finds its member); if that fails, the inbox worker works them later.

Answers (every error is ``{"error": reason}``):

- 200 ``{"accepted": n, "rejected": m, "errors": [{"index": i, "reason": …}]}``: a batch
  whatever its items (each is judged alone), a track or identify that was accepted;
- 400: the body is not JSON or not the shape (an object; a batch: ``{"batch": [...]}``
  with at most ``MAX_ITEMS`` items), or the one item of a track or identify was rejected
  (the same body as a 200 then, saying why);
- 401 (with ``WWW-Authenticate: Bearer``): no key, or a key that is not configured;
- 413: a body over ``NUDGEFLOW_WEB__MAX_BODY_BYTES``, refused before it is read in full;
- 503: no keys are configured: the API is off.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bootstrap.app import App
from inbound.inbox import work_inbox
from inbound.ingest_items import check_items
from nudgeflow.timeutil import to_epoch
from store.importer import Returning
from store.rows import RowError, load_json
from web.bodies import read_body
from web.intake import app_of, problem, store

logger = logging.getLogger("nudgeflow.web")
MAX_ITEMS = 10_000
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nudgeflow ingest"'}


def key_is_known(given: str, keys: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``keys``, comparing with every key in constant time."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def _refused(request: Request, keys: tuple[str, ...]) -> Response | None:
    if not keys:
        return problem(
            503, "the ingestion API is off: set NUDGEFLOW_INGEST__API_KEYS to turn it on"
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return problem(401, "a bearer key is required (Authorization: Bearer KEY)", CHALLENGE)
    if not key_is_known(given.strip(), keys):
        return problem(401, "the key is not valid", CHALLENGE)
    return None


def _items(body: Any, only: str | None) -> list[Any] | str:
    """The request's items, or why its shape is wrong."""
    if not isinstance(body, dict):
        return "expected a JSON object"
    if only is not None:
        return [body]
    batch = body.get("batch")
    if not isinstance(batch, list):
        return 'expected {"batch": [...]}, a list of track and identify calls'
    if len(batch) > MAX_ITEMS:
        return f"a batch holds at most {MAX_ITEMS:,} items, this one has {len(batch):,}"
    return batch


def _accept(app: App, items: list[Any], only: str | None) -> dict[str, Any]:
    received = to_epoch(app.clock())
    with app.engine.connect() as connection:
        returning = Returning(app.settings.signing_key.get_secret_value())
        checked = check_items(connection, items, received, only, returning)
    if checked.accepted:
        body = json.dumps({"items": checked.accepted}, ensure_ascii=False)
        row_id = store(app, "ingest", body, received)
        try:
            work_inbox(app.engine, app.zone, app.clock, only=[row_id])
        except Exception:  # stored and committed: the inbox worker tries again
            logger.exception("working ingestion request %d failed; it stays in the inbox", row_id)
    return checked.report()


def endpoint(only: str | None) -> Any:
    async def ingest(request: Request) -> Response:
        app = app_of(request)
        refused = _refused(request, app.settings.ingest.keys())
        if refused is not None:
            return refused
        try:
            raw = await read_body(request, app.settings.web.max_body_bytes)
        except HTTPException as exc:
            return problem(exc.status_code, str(exc.detail))
        try:
            body = load_json("body", raw.decode("utf-8"))
        except UnicodeDecodeError:
            return problem(400, "the body is not UTF-8")
        except RowError as exc:
            return problem(400, f"malformed JSON: {exc.reason}")
        items = _items(body, only)
        if isinstance(items, str):
            return problem(400, items)
        report = await run_in_threadpool(_accept, app, items, only)
        status = 400 if only is not None and report["rejected"] else 200
        return JSONResponse(report, status_code=status)

    return ingest


routes: list[BaseRoute] = [
    Route("/api/v1/track", endpoint("track"), methods=["POST"]),
    Route("/api/v1/identify", endpoint("identify"), methods=["POST"]),
    Route("/api/v1/batch", endpoint(None), methods=["POST"]),
]
