"""The pages the emails link to: unsubscribe (RFC 8058 one-click and the footer link), the
preference centre, and VIP invites.

Each handler reads the token from the path and the form from the body, calls one use case
of ``inbound`` and renders the answer. A GET never changes anything (mail scanners follow
links); every change is a POST of a form. Status codes, for people and for monitoring:

* 400: a forged, truncated or foreign token, or a POST that is neither a one-click request
  nor one of our forms. A token is the only key to these pages, so a bad one is a bad
  request, not a missing page; 404 is kept for the genuine token of a member who is no
  longer on record, so the two read apart in the logs.
* 404: the token is genuine, its member is gone.
* 410: a VIP invite past its expiry, or withdrawn.
* 413: a body over ``NUDGEFLOW_WEB__MAX_BODY_BYTES``.

Pages carry nothing about the member beyond what the token names (no email address, no
name), and are sent with headers that keep them out of frames, caches and referrers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from bootstrap.app import App
from delivery.tokens import BadTokenError
from inbound import invites, links
from inbound.preferences import PAUSE_DAYS, InvalidPreferenceChange, PreferenceView
from nudgeflow.errors import CampaignFileError, NotFoundError
from providers.invites import InvalidInvite, InviteExpired
from web.bodies import read_body

TEMPLATES = Path(__file__).resolve().parent / "templates"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058's body
BUTTON = "action"  # the name of our forms' submit buttons

_jinja = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _day(value: date | datetime) -> str:
    """21 December 2026 (whatever the platform's strftime supports)."""
    return f"{value.day} {value:%B %Y}"


def _label(category: str) -> str:
    """A category's name as a person reads it: ``gift_cards`` → Gift cards."""
    return category.replace("_", " ").replace("-", " ").capitalize()


_jinja.filters["day"] = _day
_jinja.filters["label"] = _label


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context``, with the pages' security headers."""
    html = _jinja.get_template(f"{template}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(status: int, title: str, message: str) -> HTMLResponse:
    return page("error", status, title=title, message=message)


BAD_LINK = (
    "This link is not valid",
    "It may have been cut short or changed when it was copied. Open it again from the email "
    "itself, or reply to that email and we will take care of it.",
)
GONE_MEMBER = (
    "We have no record of you",
    "This link belongs to someone who is no longer on our list, so no more emails will be "
    "sent to that address.",
)
BAD_FORM = (
    "We did not understand that request",
    "Please go back to the page and press one of its buttons.",
)


def _app(request: Request) -> App:
    app: App = request.app.state.nudgeflow
    return app


def _key(app: App) -> str:
    return app.settings.signing_key.get_secret_value()


def parse_form(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The fields of a form body: URL-encoded (our pages, most mail providers) or
    multipart (RFC 8058 prefers it). ``ValueError`` for anything else."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("", "application/x-www-form-urlencoded"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the form is not UTF-8") from None
        return parse_qs(text, keep_blank_values=True)
    if media == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        if not message.is_multipart():
            raise ValueError("a multipart form without parts")
        fields: dict[str, list[str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields.setdefault(name, []).append(payload.decode("utf-8", "replace"))
        return fields
    raise ValueError(f"a body of type {media}, not a form")


async def read_form(request: Request) -> dict[str, list[str]]:
    """The request's form, its body read within the service's limit (413 beyond it)."""
    body = await read_body(request, _app(request).settings.web.max_body_bytes)
    try:
        return parse_form(request.headers.get("content-type", ""), body)
    except ValueError:
        raise HTTPException(400, BAD_FORM[1]) from None


def first(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


Handler = Callable[[Request], Awaitable[Response]]


def answers_errors(handler: Handler) -> Handler:
    """Turn what a page's use case refuses into a page with its status."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BadTokenError:
            return error_page(400, *BAD_LINK)
        except NotFoundError:
            return error_page(404, *GONE_MEMBER)
        except InviteExpired as exc:
            withdrawn = isinstance(exc, invites.InviteWithdrawn)
            return error_page(
                410,
                "This invitation was withdrawn" if withdrawn else "This invitation has expired",
                "Invitations are personal and open for a limited time. If you think this is "
                "a mistake, reply to the email that brought it.",
            )
        except InvalidInvite:
            return error_page(400, "This invitation link is not valid", BAD_LINK[1])
        except InvalidPreferenceChange:
            return error_page(400, *BAD_FORM)
        except CampaignFileError:
            # The operator broke a campaign file: the page cannot list the categories.
            return error_page(
                503,
                "This page is not available right now",
                "Please try again later, or reply to the email to tell us what you would like.",
            )
        except HTTPException as exc:
            if exc.status_code == 413:
                return error_page(413, "That request was too large", str(exc.detail))
            if exc.status_code == 400:
                return error_page(400, BAD_FORM[0], BAD_FORM[1])
            raise

    return wrapped


# ---- unsubscribe ---------------------------------------------------------------------------


@answers_errors
async def unsubscribe_page(request: Request) -> Response:
    app, token = _app(request), request.path_params["token"]
    state = await run_in_threadpool(links.check_link, app.engine, token, _key(app))
    return page("unsubscribe", done=state.unsubscribed, already=state.unsubscribed, token=token)


@answers_errors
async def unsubscribe(request: Request) -> Response:
    """RFC 8058 one-click (``List-Unsubscribe=One-Click``: 200, never a redirect) or the
    page's button; the same effect, once."""
    app, token = _app(request), request.path_params["token"]
    form = await read_form(request)
    if first(form, ONE_CLICK[0]) == ONE_CLICK[1]:
        source = links.ONE_CLICK
    elif first(form, BUTTON) == "unsubscribe":
        source = links.LINK
    else:
        return error_page(400, *BAD_FORM)
    at: datetime = app.clock()
    state = await run_in_threadpool(
        lambda: links.unsubscribe_by_link(app.engine, token, _key(app), at=at, source=source)
    )
    return page("unsubscribe", done=True, already=not state.changed, token=token)


# ---- the preference centre ----------------------------------------------------------------


def _categories(app: App) -> tuple[str, ...]:
    """The categories of policy.yaml, read per request: an edit takes effect at once."""
    return app.load_campaigns().policy.categories


def _said(action: str, view: PreferenceView) -> str:
    if action.startswith(links.PAUSE) and view.paused_until is not None:
        return f"Paused: no emails from us until {_day(view.paused_until)}, included."
    return {
        links.SAVE: "Your choices are saved.",
        links.RESUME: "Your emails are on again.",
        links.UNSUBSCRIBE_ALL: "Done: you are unsubscribed from all our emails.",
        links.RESUBSCRIBE: "Welcome back: you are subscribed again.",
    }.get(action, "Saved.")


def preferences_response(view: PreferenceView, said: str | None = None) -> HTMLResponse:
    return page("preferences", view=view, said=said, pause_days=PAUSE_DAYS)


@answers_errors
async def preferences_page(request: Request) -> Response:
    app, token = _app(request), request.path_params["token"]
    now = app.clock()

    def read() -> PreferenceView:
        categories = _categories(app)
        return links.open_preferences(
            app.engine, token, _key(app), categories, now=now, zone=app.zone
        )

    return preferences_response(await run_in_threadpool(read))


@answers_errors
async def change_preferences(request: Request) -> Response:
    app, token = _app(request), request.path_params["token"]
    form = await read_form(request)
    action = first(form, BUTTON)
    if action is None:
        return error_page(400, *BAD_FORM)
    change = links.PageChange(action, frozenset(form.get("category", [])))
    at = app.clock()

    def write() -> PreferenceView:
        categories = _categories(app)
        return links.update_preferences(
            app.engine, token, _key(app), change, categories, at=at, zone=app.zone
        )

    view = await run_in_threadpool(write)
    return preferences_response(view, _said(action, view))


# ---- VIP invites ---------------------------------------------------------------------------


@answers_errors
async def invite_page(request: Request) -> Response:
    app, token = _app(request), request.path_params["token"]
    now = app.clock()
    state = await run_in_threadpool(
        lambda: invites.open_invite(app.engine, token, _key(app), now=now)
    )
    return page("invite", invite=state.invite, accepted=state.accepted, just_now=False)


@answers_errors
async def accept_invite(request: Request) -> Response:
    app, token = _app(request), request.path_params["token"]
    form = await read_form(request)
    if first(form, BUTTON) != "accept":
        return error_page(400, *BAD_FORM)
    at = app.clock()
    state = await run_in_threadpool(
        lambda: invites.accept_invite(app.engine, token, _key(app), at=at)
    )
    return page("invite", invite=state.invite, accepted=True, just_now=state.just_now)


routes: list[BaseRoute] = [
    Route("/u/{token}", unsubscribe_page, methods=["GET"]),
    Route("/u/{token}", unsubscribe, methods=["POST"]),
    Route("/preferences/{token}", preferences_page, methods=["GET"]),
    Route("/preferences/{token}", change_preferences, methods=["POST"]),
    Route("/vip/{token}", invite_page, methods=["GET"]),
    Route("/vip/{token}", accept_invite, methods=["POST"]),
]
