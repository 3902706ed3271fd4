"""SendGrid v3 mail send through the official client, at most once per email.

SendGrid has no idempotency key, so a retry is safe only when the failure proves SendGrid did
not take the email: 429, 5xx, and failures while connecting or sending the request (refused,
unreachable, connect timeout). Those go through the shared policy of ``providers.retry``
(a 429's ``X-RateLimit-Reset`` or ``Retry-After`` is the wait, and pauses every thread).
Once the request is out, a timeout or a dropped connection can hide an accepted send: that
is ``OutcomeUnknown``, never retried. 401/403 is ``DeliveryAuthError``.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
from collections.abc import Callable
from typing import Any

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

from delivery.message import OutgoingEmail
from providers.email import (
    DeliveryAuthError,
    OutcomeUnknown,
    RetriesExhausted,
    SendError,
    SendResult,
)
from providers.ratelimit import RateLimiter
from providers.retry import RetryPolicy, TransientFailure, call_with_retries, requested_wait

ACCEPTED = (200, 202)  # 202 queued; 200 is what sandbox mode answers
AUTH_FAILURES = (401, 403)


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
