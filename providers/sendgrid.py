"""SendGrid v3 mail send through the official client, at most once per email.

SendGrid has no idempotency key, so a retry is safe only when the failure proves SendGrid did
not take the email: 429, 5xx, and failures while connecting or sending the request (refused,
unreachable, connect timeout). Those go through the shared policy of ``providers.retry``
(a 429's ``X-RateLimit-Reset`` or ``Retry-After`` is the wait, and pauses every thread).
Once the request is out, a timeout or a dropped connection can hide an accepted send: that
is ``OutcomeUnknown``, never retried. 401/403 is ``DeliveryAuthError``.

The body and the headers are the official client's (``sendgrid.helpers.mail``,
``SendGridAPIClient``); the request goes over a ``urllib3`` connection pool that keeps its
connections open between sends, one per dispatch thread. The official client's transport
(``python_http_client``) builds a urllib opener for every request and closes the connection
after it: about 1 ms of CPU, and a TCP (and TLS) handshake, per email.
"""

from __future__ import annotations

import json
import time
import urllib.request
import weakref
from collections.abc import Callable
from typing import Any

import urllib3
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


def _error_detail(response: urllib3.BaseHTTPResponse) -> str:
    """SendGrid's own words: ``{"errors": [{"message": …, "field": …}]}``."""
    try:
        errors = json.loads(response.data).get("errors") or []
        parts = [
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in errors
            if isinstance(e, dict)
        ]
    except (ValueError, AttributeError):
        parts = []
    return "; ".join(parts) or str(response.reason or "no details")


def connection_pool(url: str, connections: int, timeout: float) -> urllib3.PoolManager:
    """Kept-alive connections to ``url``'s host, through the proxy the environment names
    for it (``HTTPS_PROXY``, ``NO_PROXY``…, read once, as urllib reads them per request).
    No retries beneath ours: urllib3 could repeat a POST that SendGrid took."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    proxy = None if urllib.request.proxy_bypass(host) else urllib.request.getproxies().get(scheme)
    options: dict[str, Any] = {"maxsize": connections, "retries": False, "timeout": timeout}
    if proxy:
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


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
        connections: int = 64,
    ) -> None:
        self.limiter = limiter
        client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self._url = f"{client.host}/v3/mail/send"
        self._headers = {**client._default_headers, "Content-Type": "application/json"}
        # One pool for every thread: each thread sending at once holds one kept-alive
        # connection (``connections`` at most are kept; the settings allow 64 threads).
        self._pool = connection_pool(self._url, connections, timeout_seconds)
        # Closed with the sender, or when it is dropped: no socket is left to the collector.
        self._closer = weakref.finalize(self, self._pool.clear)
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

    def close(self) -> None:
        """Close the kept-alive connections (sending again opens new ones)."""
        self._closer()

    def body(self, message: OutgoingEmail) -> dict[str, Any]:
        return sendgrid_body(
            message,
            sandbox_mode=self.sandbox_mode,
            unsubscribe_group_id=self.unsubscribe_group_id,
        )

    def send(self, message: OutgoingEmail) -> SendResult:
        data = json.dumps(self.body(message)).encode()
        try:
            response = call_with_retries(
                lambda: self._post(data), self.retry, limiter=self.limiter, sleep=self._sleep
            )
        except TransientFailure as exc:
            raise RetriesExhausted(
                f"SendGrid still failing after {self.retry.attempts} attempts: {exc.problem}"
            ) from None
        if response.status not in ACCEPTED:
            raise SendError(f"SendGrid answered HTTP {response.status}", response.status)
        return SendResult(provider_message_id=response.headers.get("X-Message-Id"))

    def _post(self, data: bytes) -> urllib3.BaseHTTPResponse:
        """One attempt; a failure that proves nothing was sent is a ``TransientFailure``."""
        try:
            # Not redirected: a redirected POST would be sent again as a GET.
            response = self._pool.request(
                "POST", self._url, body=data, headers=self._headers, redirect=False
            )
        except (
            urllib3.exceptions.ConnectTimeoutError,
            urllib3.exceptions.NewConnectionError,
        ) as exc:
            # Refused, unreachable, a name that did not resolve, a connect that timed out:
            # SendGrid never got a byte of the request, so trying again cannot send twice.
            raise TransientFailure(f"{type(exc).__name__}: {exc}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # Reset, closed or timed out once the request was on its way: it may have been
            # taken.
            raise OutcomeUnknown(
                f"SendGrid may have accepted the email; its answer was lost "
                f"({type(exc).__name__}: {exc})"
            ) from None
        status = response.status
        if status < 400:
            return response
        detail = _error_detail(response)
        if status in AUTH_FAILURES:
            raise DeliveryAuthError(
                f"SendGrid refused the API key (HTTP {status}: {detail}); check "
                "NUDGEFLOW_SENDGRID__API_KEY and its mail.send permission"
            )
        if status != 429 and status < 500:
            raise SendError(f"SendGrid refused the email: HTTP {status}: {detail}", status)
        raise TransientFailure(
            f"HTTP {status}: {detail}",
            retry_after=requested_wait(response.headers, self._clock()),
            rate_limited=status == 429,
        )
