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
from collections.abc import Callable
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
from providers.retry import RetryPolicy, TransientFailure, call_with_retries, requested_wait
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
    """``EmailSender`` for SendGrid: ``max_attempts`` in all for failures that prove nothing
    was sent, the wait doubling from ``backoff`` seconds (or what a 429 asks for), never
    longer than ``max_wait``."""

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
        # No jitter: one sender per process, and a 429 names its own wait.
        self.retry = RetryPolicy(
            attempts=max(1, max_attempts),
            base_delay=backoff,
            max_delay=max_wait,
            jitter=False,
            max_server_wait=max_wait,
        )
        self._sleep = sleep
        self._clock = clock

    def body(self, message: OutgoingEmail) -> dict[str, Any]:
        return sendgrid_body(
            message,
            sandbox_mode=self.sandbox_mode,
            unsubscribe_group_id=self.unsubscribe_group_id,
        )

    def send(self, message: OutgoingEmail) -> SendResult:
        body = self.body(message)
        try:
            response = call_with_retries(
                lambda: self._post(body), self.retry, limiter=self.limiter, sleep=self._sleep
            )
        except TransientFailure as exc:
            raise RetriesExhausted(
                f"SendGrid still failing after {self.retry.attempts} attempts: {exc.problem}"
            ) from None
        if response.status_code not in ACCEPTED:
            raise SendError(f"SendGrid answered HTTP {response.status_code}", response.status_code)
        return SendResult(provider_message_id=response.headers.get("X-Message-Id"))

    def _post(self, body: dict[str, Any]) -> Any:
        """One attempt; a failure that proves nothing was sent is a ``TransientFailure``."""
        try:
            return self._client.send(body)
        except HTTPError as exc:
            status = int(exc.status_code)
            detail = _error_detail(exc)
            if status in AUTH_FAILURES:
                raise DeliveryAuthError(
                    f"SendGrid refused the API key (HTTP {status}: {detail}); check "
                    "NUDGEFLOW_SENDGRID__API_KEY and its mail.send permission"
                ) from None
            if status != 429 and status < 500:
                raise SendError(
                    f"SendGrid refused the email: HTTP {status}: {detail}", status
                ) from None
            raise TransientFailure(
                f"HTTP {status}: {detail}",
                retry_after=requested_wait(exc.headers, self._clock()),
                rate_limited=status == 429,
            ) from None
        except urllib.error.URLError as exc:
            # urllib wraps what fails while connecting and sending the request: SendGrid
            # never got a whole request, so trying again cannot send the email twice.
            raise TransientFailure(f"{type(exc).__name__}: {exc.reason}") from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            # Raised while waiting for or reading the answer: the request was sent.
            raise OutcomeUnknown(
                f"SendGrid may have accepted the email; its answer was lost "
                f"({type(exc).__name__}: {exc})"
            ) from None


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
