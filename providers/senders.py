"""Senders: one ``EmailSender`` interface, the SendGrid v3 API and a file outbox.

::

    DeliveryError (nudgeflow.errors)
    ├── SendError            the provider refused this message (400, 404, 413, …): fail the
    │                        action with the reason; the next action may well succeed
    ├── RetriesExhausted     429, 5xx, timeouts or dropped connections, still failing after
    │                        every retry: the provider is in trouble, not the message
    └── DeliveryAuthError    401/403: the API key is wrong or lacks the mail.send scope;
                             every further send would fail too, so the dispatcher stops the run

``build_sender(settings)`` picks one (called by the composition root). The file outbox is
the default: with no SendGrid key nothing leaves the machine, and every email lands as an
RFC 5322 ``.eml`` file under ``EMAIL__OUTBOX_DIR/<as_of>/`` that any mail client opens.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import time
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address as MimeAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, Protocol

from python_http_client.exceptions import HTTPError  # type: ignore[import-untyped]
from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]
from sendgrid.helpers.mail import (  # type: ignore[import-untyped]
    Asm,
    Category,
    CustomArg,
    From,
    GroupId,
    Header,
    Mail,
    MailSettings,
    SandBoxMode,
    SendAt,
    To,
)

from delivery.message import Address, OutgoingEmail
from nudgeflow.errors import DeliveryError, SettingsError
from providers.ratelimit import RateLimiter
from settings import AppSettings

ACCEPTED = (200, 202)  # 202 queued; 200 is what sandbox mode answers
AUTH_FAILURES = (401, 403)


class SendError(DeliveryError):
    """The provider refused this message for good; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetriesExhausted(SendError):
    """A transient failure (429, 5xx, a failed connection) outlasted every retry."""


class OutcomeUnknown(DeliveryError):
    """The request reached SendGrid but its answer was lost (a read timeout, a reset or a
    cut-off response): the email may have been accepted. SendGrid has no idempotency key,
    so this is never retried; the dispatcher records the action as ``unknown``."""


class DeliveryAuthError(DeliveryError):
    """SendGrid refused the API key (401) or its permissions (403): stop the whole dispatch."""


@dataclass(frozen=True)
class SendResult:
    """What the provider said: SendGrid's ``X-Message-Id`` (or the outbox file's Message-ID)."""

    provider_message_id: str | None


class EmailSender(Protocol):
    """Sends one message; raises a ``DeliveryError`` subclass when it cannot."""

    def send(self, message: OutgoingEmail) -> SendResult: ...


# --- the file outbox ----------------------------------------------------------------------


def _mime_address(address: Address) -> MimeAddress:
    return MimeAddress(display_name=address.name or "", addr_spec=address.email)


def to_mime(message: OutgoingEmail, sent: datetime) -> EmailMessage:
    """The RFC 5322 message: the headers SendGrid would get, and both parts.

    What SendGrid takes as JSON fields (custom args, categories, send_at) is written as
    ``X-Nudgeflow-*`` headers so that nothing the real send carries is lost from the file.
    """
    mime = EmailMessage()
    mime["From"] = _mime_address(message.sender)
    mime["To"] = _mime_address(message.recipient)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(sent.astimezone(UTC))
    mime["Message-ID"] = make_msgid(
        idstring=message.action_id, domain=message.sender.email.rsplit("@", 1)[1]
    )
    for name, value in message.headers.items():
        mime[name] = value
    for key, value in message.custom_args.items():
        mime[f"X-Nudgeflow-{key.replace('_', '-').title()}"] = value
    if message.categories:
        mime["X-Nudgeflow-Categories"] = ", ".join(message.categories)
    if message.send_at is not None:
        mime["X-Nudgeflow-Send-At"] = format_datetime(message.send_at.astimezone(UTC))
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


def _safe_file_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".") or "email"


class FileOutboxSender:
    """Writes each message to ``<outbox>/<as_of>/<action_id>.eml`` (like Django's file
    backend). The file appears whole or not at all (written aside, then renamed)."""

    def __init__(self, outbox_dir: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.outbox_dir = Path(outbox_dir)
        self._clock = clock or (lambda: datetime.now(UTC))

    def path_for(self, message: OutgoingEmail) -> Path:
        folder = self.outbox_dir / message.as_of.isoformat()
        return folder / f"{_safe_file_name(message.action_id)}.eml"

    def send(self, message: OutgoingEmail) -> SendResult:
        mime = to_mime(message, self._clock())
        path = self.path_for(message)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
            with os.fdopen(fd, "wb") as stream:
                stream.write(mime.as_bytes(policy=SMTP))
            os.replace(temporary, path)
        except OSError as exc:
            raise SendError(f"cannot write {path}: {exc.strerror or exc}") from None
        return SendResult(provider_message_id=str(mime["Message-ID"]))


# --- SendGrid -----------------------------------------------------------------------------


def sendgrid_body(
    message: OutgoingEmail, *, sandbox_mode: bool = False, unsubscribe_group_id: int | None = None
) -> dict[str, Any]:
    """The v3 mail-send JSON for ``message``, built with the official helpers."""
    mail = Mail(
        from_email=From(message.sender.email, message.sender.name),
        to_emails=To(message.recipient.email, message.recipient.name),
        subject=message.subject,
        plain_text_content=message.text,
        html_content=message.html,
    )
    mail.header = [Header(name, value) for name, value in message.headers.items()]
    mail.custom_arg = [CustomArg(key, value) for key, value in message.custom_args.items()]
    mail.category = [Category(name) for name in message.categories]
    if unsubscribe_group_id is not None:
        mail.asm = Asm(GroupId(unsubscribe_group_id))
    if message.send_at is not None:
        mail.send_at = SendAt(int(message.send_at.timestamp()))
    if sandbox_mode:
        mail.mail_settings = MailSettings(sandbox_mode=SandBoxMode(True))
    body: dict[str, Any] = mail.get()
    return body


def _error_detail(exc: HTTPError) -> str:
    """SendGrid's own words: ``{"errors": [{"message": …, "field": …}]}``."""
    try:
        errors = exc.to_dict.get("errors") or []
        parts = [
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in errors
            if isinstance(e, dict)
        ]
    except (ValueError, AttributeError):
        parts = []
    return "; ".join(parts) or str(exc.reason or "no details")


class SendGridSender:
    """SendGrid v3 mail send through the official client, with retries.

    Email is sent at most once. Failures that prove SendGrid did not take
    the email are retried up to ``max_attempts`` in all: 429, 5xx, and failures while
    connecting or sending the request (refused, unreachable, connect timeout), waiting until
    ``X-RateLimit-Reset`` (or ``Retry-After``) on 429 and doubling from ``backoff`` seconds
    otherwise, never longer than ``max_wait``. Once the request is out, a timeout or a
    dropped connection can hide an accepted send: that raises ``OutcomeUnknown`` instead of
    a retry that could deliver the email twice.
    """

    def __init__(
        self,
        *,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        timeout_seconds: float = 10.0,
        sandbox_mode: bool = False,
        unsubscribe_group_id: int | None = None,
        max_attempts: int = 4,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.limiter = limiter
        self._client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        # The official client passes no timeout to urllib unless told: set it once on its
        # HTTP client, which hands it to every request it builds.
        self._client.client.timeout = timeout_seconds
        self.sandbox_mode = sandbox_mode
        self.unsubscribe_group_id = unsubscribe_group_id
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock

    def body(self, message: OutgoingEmail) -> dict[str, Any]:
        return sendgrid_body(
            message,
            sandbox_mode=self.sandbox_mode,
            unsubscribe_group_id=self.unsubscribe_group_id,
        )

    def _rate_limit_wait(self, headers: Mapping[str, str] | None, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        fallback = self.backoff * float(2 ** (attempt - 1))
        if headers is not None:
            reset = headers.get("X-RateLimit-Reset")
            retry_after = headers.get("Retry-After")
            try:
                if reset is not None:
                    return min(self.max_wait, max(0.0, float(reset) - self._clock()))
                if retry_after is not None:
                    return min(self.max_wait, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an unparsable header: fall back to our own backoff
        return min(self.max_wait, fallback)

    def send(self, message: OutgoingEmail) -> SendResult:
        body = self.body(message)
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            if self.limiter is not None:
                self.limiter.acquire()
            try:
                response = self._client.send(body)
            except HTTPError as exc:
                status = int(exc.status_code)
                detail = _error_detail(exc)
                if status in AUTH_FAILURES:
                    raise DeliveryAuthError(
                        f"SendGrid refused the API key (HTTP {status}: {detail}); check "
                        "NUDGEFLOW_SENDGRID__API_KEY and its mail.send permission"
                    ) from None
                if status != 429 and status < 500:
                    message_text = f"SendGrid refused the email: HTTP {status}: {detail}"
                    raise SendError(message_text, status) from None
                problem = f"HTTP {status}: {detail}"
                wait = self._rate_limit_wait(exc.headers, attempt)
                if status == 429 and self.limiter is not None:
                    self.limiter.pause(wait)  # every thread backs off, not just this one
            except urllib.error.URLError as exc:
                # urllib wraps what fails while connecting and sending the request: SendGrid
                # never got a whole request, so trying again cannot send the email twice.
                problem = f"{type(exc).__name__}: {exc.reason}"
                wait = self._rate_limit_wait(None, attempt)
            except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                # Raised while waiting for or reading the answer: the request was sent.
                raise OutcomeUnknown(
                    f"SendGrid may have accepted the email; its answer was lost "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            else:
                if response.status_code not in ACCEPTED:
                    raise SendError(
                        f"SendGrid answered HTTP {response.status_code}", response.status_code
                    )
                return SendResult(provider_message_id=response.headers.get("X-Message-Id"))
            if attempt < self.max_attempts:
                self._sleep(wait)
        raise RetriesExhausted(
            f"SendGrid still failing after {self.max_attempts} attempts: {problem}"
        )


def build_sender(settings: AppSettings) -> EmailSender:
    """The sender the settings ask for (``NUDGEFLOW_EMAIL__TRANSPORT``)."""
    if settings.email.transport == "file":
        return FileOutboxSender(settings.email.outbox_dir)
    sendgrid = settings.sendgrid
    if sendgrid.api_key is None or not sendgrid.api_key.get_secret_value():
        raise SettingsError(
            "NUDGEFLOW_SENDGRID__API_KEY: required when NUDGEFLOW_EMAIL__TRANSPORT=sendgrid "
            "(or set NUDGEFLOW_EMAIL__TRANSPORT=file to write emails to the outbox)"
        )
    return SendGridSender(
        api_key=sendgrid.api_key.get_secret_value(),
        host=sendgrid.base_url,
        timeout_seconds=sendgrid.timeout_seconds,
        sandbox_mode=sendgrid.sandbox_mode,
        unsubscribe_group_id=sendgrid.unsubscribe_group_id,
        max_attempts=sendgrid.max_attempts,
        limiter=RateLimiter(sendgrid.max_requests_per_second),
    )
