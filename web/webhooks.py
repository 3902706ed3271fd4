"""``POST /webhooks/sendgrid`` and ``POST /webhooks/stripe``: verify, store, answer.

The request path is kept lean on purpose (SendGrid posts thousands of events a minute):
check the headers, read the body, check the signature with the provider's own library and
the body is the JSON it must be, store it in the inbox with the requests that arrived with
it (``web.intake.InboxWriter``: group commit), and answer 200 once it is committed.
Mapping events to members happens in the inbox worker (``inbound.inbox``). Nothing is
stored for a request that is refused.

Answers (every error is ``{"error": reason}``):

- 200: stored (``{"accepted": n}``; Stripe: also for an event type we do not act on, which
  is not stored: ``{"ignored": type}``);
- 400: a body that is not UTF-8, not JSON, or not the shape (SendGrid: an array of objects);
- 401: missing or forged signature, or a timestamp more than 5 minutes from now (a replayed
  request: 401 rather than 400, because it fails authentication like a forged one, and the
  sender is told nothing more about which check failed than the reason);
- 413: a body over ``NUDGEFLOW_WEB__MAX_BODY_BYTES``, refused before it is read in full;
- 503: the request could not be stored (the database is unreachable), or the endpoint's
  key or secret is not configured. 503 rather than 404 because both providers retry a 5xx
  for hours: events sent before an operator sets the key, or while the database is down,
  still arrive.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import stripe
from sendgrid.helpers.eventwebhook import EventWebhook  # type: ignore[import-untyped]
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from nudgeflow.timeutil import to_epoch
from providers.stripe_reads import EVENT_TYPES
from store.inbox import Kind
from store.rows import RowError, load_json
from web.bodies import read_body
from web.intake import Answer, Check, InboxWriter, Keep, answer_for, app_of, problem

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TOLERANCE_SECONDS = 300  # SendGrid: how far the signed timestamp may be from now; Stripe's too


@lru_cache(maxsize=4)
def _verifier(public_key: str) -> Any:
    return EventWebhook(public_key)


def _signature_holds(public_key: str, text: str, signature: str, timestamp: str) -> bool:
    verifier = _verifier(public_key)
    try:
        return bool(verifier.verify_signature(text, signature, timestamp))
    except (ValueError, TypeError):  # not base64, not a DER signature
        return False


def _refused(status: int, reason: str) -> Answer:
    return Answer(status, {"error": reason})


async def _body(request: Request, limit: int) -> bytes | Response:
    try:
        return await read_body(request, limit)
    except HTTPException as exc:
        return problem(exc.status_code, str(exc.detail))


def check_sendgrid(public_key: str, body: bytes, signature: str, timestamp: str) -> Keep | Answer:
    """A SendGrid request's signature and shape."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _refused(400, "the body is not UTF-8")
    if not _signature_holds(public_key, text, signature, timestamp):
        return _refused(401, "the signature does not match the body and timestamp")
    try:
        events = load_json("body", text)
    except RowError as exc:
        return _refused(400, f"malformed JSON: {exc.reason}")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return _refused(400, "expected a JSON array of event objects")
    return Keep(text, {"accepted": len(events)})


async def sendgrid_events(request: Request) -> Response:
    app = app_of(request)
    public_key = app.settings.sendgrid.webhook_public_key
    if public_key is None:
        return problem(
            503,
            "the SendGrid Event Webhook is not configured: set NUDGEFLOW_SENDGRID__"
            "WEBHOOK_PUBLIC_KEY to the verification key SendGrid shows",
        )
    signature = request.headers.get(SIGNATURE)
    timestamp = request.headers.get(TIMESTAMP)
    if not signature or not timestamp:
        return problem(401, f"unsigned: the {SIGNATURE} and {TIMESTAMP} headers are required")
    try:
        signed_at = int(timestamp)
    except ValueError:
        return problem(401, f"{TIMESTAMP} is not a number of seconds")
    now = to_epoch(app.clock())
    if abs(now - signed_at) > TOLERANCE_SECONDS:
        return problem(401, f"stale: signed more than {TOLERANCE_SECONDS} seconds from now")
    body = await _body(request, app.settings.web.max_body_bytes)
    if isinstance(body, Response):
        return body
    return await _submitted(
        request,
        "sendgrid",
        now,
        lambda: check_sendgrid(public_key, body, signature, timestamp),
        len(body),
    )


async def _submitted(
    request: Request, kind: Kind, received_at: int, check: Check, size: int
) -> Response:
    """Check the request and store it if it passes (``web.intake.InboxWriter``); answer
    once that is done. 503 when it cannot be stored (both providers send a request again
    after a 5xx)."""
    writer: InboxWriter = request.app.state.inbox_writer
    try:
        outcome = await writer.submit(kind, received_at, check, size)
    except (SQLAlchemyError, OSError):
        return problem(503, "the request could not be stored; send it again")
    return answer_for(outcome)


def _stripe_event(payload: bytes, header: str, secret: str) -> dict[str, Any] | Answer:
    try:
        event = stripe.Webhook.construct_event(payload, header, secret, tolerance=300)
    except stripe.SignatureVerificationError as exc:
        return _refused(401, f"signature: {exc.user_message or exc}")
    except (ValueError, UnicodeDecodeError) as exc:
        return _refused(400, f"malformed JSON: {exc}")
    values = event.to_dict()
    found = {name: values.get(name) for name in ("id", "type", "created")}
    if not isinstance(found["id"], str) or not isinstance(found["type"], str):
        return _refused(400, "expected a Stripe event (id, type, created)")
    if not isinstance(found["created"], int):
        return _refused(400, "expected a Stripe event (id, type, created)")
    return found


def check_stripe(body: bytes, header: str, secret: str) -> Keep | Answer:
    """A Stripe request's signature and shape; an event type we do not act on is answered
    200 and not stored."""
    event = _stripe_event(body, header, secret)
    if isinstance(event, Answer):
        return event
    if event["type"] not in EVENT_TYPES:
        return Answer(200, {"ignored": event["type"]})
    return Keep(body.decode("utf-8"), {"accepted": 1})


async def stripe_events(request: Request) -> Response:
    app = app_of(request)
    secret = app.settings.stripe.webhook_secret
    if secret is None:
        return problem(
            503,
            "the Stripe webhook is not configured: set NUDGEFLOW_STRIPE__WEBHOOK_SECRET to "
            "the endpoint's signing secret (whsec_…)",
        )
    header = request.headers.get("stripe-signature")
    if not header:
        return problem(401, "unsigned: the Stripe-Signature header is required")
    body = await _body(request, app.settings.web.max_body_bytes)
    if isinstance(body, Response):
        return body
    key = secret.get_secret_value()
    return await _submitted(
        request, "stripe", to_epoch(app.clock()), lambda: check_stripe(body, header, key), len(body)
    )


routes: list[BaseRoute] = [
    Route("/webhooks/sendgrid", sendgrid_events, methods=["POST"]),
    Route("/webhooks/stripe", stripe_events, methods=["POST"]),
]
