"""The senders end to end: the file outbox's .eml files parsed back, and the SendGrid sender
with the real ``sendgrid`` client against the local fake."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import SecretStr

from bootstrap.providers import build_sender
from delivery.message import OutgoingEmail, build_message
from delivery.render import RenderedEmail
from nudgeflow.errors import DeliveryError, SettingsError
from providers.email import DeliveryAuthError, OutcomeUnknown, RetriesExhausted, SendError
from providers.file_outbox import FileOutboxSender
from providers.sendgrid import SendGridSender
from settings import AppSettings
from tests.fakes.sendgrid_api import FakeSendGrid, mail_send_validator

KEY = "SG.test-key"
AS_OF = date(2026, 11, 21)
HTML = '<html><body><p style="color: red;">Hi Ada — 15%</p></body></html>'
TEXT = "Hi Ada — 15%\n" + "long line " * 40 + "\n"


def _message(**overrides: object) -> OutgoingEmail:
    arguments: dict[str, object] = {
        "rendered": RenderedEmail("Ada, 15% off — on us", HTML, TEXT),
        "action_id": "0123456789abcdef0123456789abcdef",
        "campaign_id": "loyalist-discount",
        "member_id": "m1",
        "as_of": AS_OF,
        "to_email": "ada@example.com",
        "to_name": "Ada Lovelace",
        "from_address": "Shop Team <hello@shop.example>",
        "unsubscribe_url": "https://shop.example/u/TOKEN",
    }
    arguments.update(overrides)
    return build_message(**arguments)  # type: ignore[arg-type]


# --- the file outbox ----------------------------------------------------------------------


def test_outbox_writes_an_eml_that_parses_back(tmp_path: Path) -> None:
    sent = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    sender = FileOutboxSender(tmp_path / "outbox", clock=lambda: sent)
    send_at = datetime(2026, 11, 21, 9, tzinfo=UTC)
    result = sender.send(_message(send_at=send_at))
    path = tmp_path / "outbox" / "2026-11-21" / "0123456789abcdef0123456789abcdef.eml"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    raw = path.read_bytes()
    assert b"\r\n" in raw  # SMTP line endings
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == result.provider_message_id
    assert parsed["From"] == "Shop Team <hello@shop.example>"
    assert parsed["To"] == "Ada Lovelace <ada@example.com>"
    assert parsed["Subject"] == "Ada, 15% off — on us"
    assert parsed["Date"] == "Sat, 21 Nov 2026 01:00:00 +0000"
    assert parsed["List-Unsubscribe"] == (
        "<https://shop.example/u/TOKEN>, "
        "<mailto:unsubscribe@shop.example?subject=unsubscribe%20TOKEN>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["X-Nudgeflow-Campaign-Id"] == "loyalist-discount"
    assert parsed["X-Nudgeflow-Categories"] == "loyalist-discount"
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    # The file has SMTP line endings (CRLF), which the parsed parts keep.
    assert text.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == HTML


def test_outbox_unwritable_is_a_send_error(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(SendError, match="cannot write"):
        FileOutboxSender(blocker).send(_message())


# --- SendGrid through the real client -----------------------------------------------------


class Sleeps:
    """Records the waits instead of waiting them (retries stay instant)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(KEY, timeout_delay=2.0) as server:
        yield server


def _sender(fake: FakeSendGrid, sleeps: Sleeps | None = None, **options: object) -> SendGridSender:
    arguments: dict[str, object] = {
        "api_key": KEY,
        "host": fake.url,
        "timeout_seconds": 0.5,
        "sleep": sleeps or Sleeps(),
    }
    arguments.update(options)
    return SendGridSender(**arguments)  # type: ignore[arg-type]


def test_body_is_valid_and_carries_everything(fake: FakeSendGrid) -> None:
    send_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=7)
    sender = _sender(fake, unsubscribe_group_id=4242)
    result = sender.send(_message(send_at=send_at))
    assert result.provider_message_id == "fake-000001"
    assert fake.rejected == []
    (received,) = fake.messages
    body = received.body
    assert received.headers["Authorization"] == f"Bearer {KEY}"
    assert received.headers["User-Agent"].startswith("sendgrid/")
    assert body["custom_args"] == {
        "action_id": "0123456789abcdef0123456789abcdef",
        "campaign_id": "loyalist-discount",
    }
    assert body["categories"] == ["loyalist-discount"]
    assert body["asm"] == {"group_id": 4242}
    assert body["send_at"] == int(send_at.timestamp())
    assert body["headers"] == {
        "List-Unsubscribe": "<https://shop.example/u/TOKEN>, "
        "<mailto:unsubscribe@shop.example?subject=unsubscribe%20TOKEN>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert body["subject"] == "Ada, 15% off — on us"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "mail_settings" not in body


def test_sandbox_mode(fake: FakeSendGrid) -> None:
    result = _sender(fake, sandbox_mode=True).send(_message())
    assert result.provider_message_id is None
    assert fake.messages[0].sandbox


def test_fake_rejects_what_sendgrid_rejects(fake: FakeSendGrid) -> None:
    """The fake's own checks: the schema and the documented limits."""
    validator = mail_send_validator()
    good = _sender(fake).body(_message())
    assert list(validator.iter_errors(good)) == []
    too_late = _message(send_at=datetime.now(UTC) + timedelta(hours=73))
    with pytest.raises(SendError, match="72 hours") as caught:
        _sender(fake).send(too_late)
    assert caught.value.status == 400
    many = dict(good, categories=[f"c{i}" for i in range(11)])
    assert list(validator.iter_errors(many))  # maxItems in the schema
    assert fake.messages == []


def test_429_waits_until_the_rate_limit_resets(fake: FakeSendGrid) -> None:
    sleeps = Sleeps()
    now = time.time()
    fake.fail_next(429, times=2, headers={"X-RateLimit-Reset": str(int(now) + 5)})
    sender = _sender(fake, sleeps, clock=lambda: now)
    assert sender.send(_message()).provider_message_id == "fake-000001"
    assert fake.attempts == 3
    assert sleeps.waits == [pytest.approx(int(now) + 5 - now)] * 2


def test_5xx_are_retried_with_backoff(fake: FakeSendGrid) -> None:
    sleeps = Sleeps()
    fake.fail_next(500)
    fake.fail_next(503)
    fake.fail_next(502)
    sender = _sender(fake, sleeps, max_attempts=5, backoff=0.25)
    assert sender.send(_message()).provider_message_id == "fake-000001"
    assert fake.attempts == 4
    assert sleeps.waits == [0.25, 0.5, 1.0]


@pytest.mark.parametrize("fault", ["timeout", "reset", "lost after acceptance"])
def test_a_lost_answer_is_never_retried(fake: FakeSendGrid, fault: str) -> None:
    """Email is at most once: once the request is out, a lost answer may hide an accepted
    send, so the sender reports the outcome as unknown instead of sending again."""
    if fault == "timeout":
        fake.timeout_next()
    elif fault == "reset":
        fake.reset_next()
    else:
        fake.reset_next(accept=True)
    sleeps = Sleeps()
    with pytest.raises(OutcomeUnknown, match="may have accepted"):
        _sender(fake, sleeps, max_attempts=5).send(_message())
    assert fake.attempts == 1
    assert sleeps.waits == []
    assert len(fake.messages) <= 1


def test_transient_errors_give_up_after_the_last_attempt(fake: FakeSendGrid) -> None:
    sleeps = Sleeps()
    fake.fail_next(502, times=3)
    with pytest.raises(RetriesExhausted, match="3 attempts: HTTP 502") as caught:
        _sender(fake, sleeps, max_attempts=3).send(_message())
    assert isinstance(caught.value, DeliveryError)
    assert len(sleeps.waits) == 2
    assert fake.messages == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_raise_delivery_auth_error(fake: FakeSendGrid, status: int) -> None:
    fake.fail_next(status)
    with pytest.raises(DeliveryAuthError, match=f"HTTP {status}"):
        _sender(fake).send(_message())
    assert fake.attempts == 1  # never retried


def test_a_wrong_key_is_refused_by_the_fake(fake: FakeSendGrid) -> None:
    with pytest.raises(DeliveryAuthError, match="NUDGEFLOW_SENDGRID__API_KEY"):
        _sender(fake, api_key="SG.wrong").send(_message())


@pytest.mark.parametrize("status", [400, 413])
def test_permanent_errors_fail_the_action(fake: FakeSendGrid, status: int) -> None:
    fake.fail_next(status)
    with pytest.raises(SendError) as caught:
        _sender(fake).send(_message())
    assert caught.value.status == status
    assert not isinstance(caught.value, RetriesExhausted | DeliveryAuthError)
    assert fake.attempts == 1


def test_connection_refused_is_transient() -> None:
    sleeps = Sleeps()
    with FakeSendGrid(KEY) as server:
        url = server.url
    sender = SendGridSender(
        api_key=KEY, host=url, timeout_seconds=0.5, max_attempts=2, sleep=sleeps
    )
    with pytest.raises(RetriesExhausted, match="2 attempts"):
        sender.send(_message())
    assert len(sleeps.waits) == 1


class KeepAlive(BaseHTTPRequestHandler):
    """Answers every mail send with 202 and keeps the connection open, as SendGrid does;
    counts the connections it was asked on."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[set[tuple[str, int]]] = set()
    headers_seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.connections.add(self.client_address)
        self.headers_seen.append(dict(self.headers))
        self.send_response(202)
        self.send_header("X-Message-Id", f"msg-{len(self.headers_seen)}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


def test_sends_reuse_kept_alive_connections_one_per_thread() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    server.daemon_threads = True
    KeepAlive.connections, KeepAlive.headers_seen = set(), []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sender = SendGridSender(api_key=KEY, host=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda n: sender.send(_message()), range(40)))
    finally:
        sender.close()
        server.shutdown()
        server.server_close()
    assert sorted(r.provider_message_id for r in results) == sorted(
        f"msg-{n}" for n in range(1, 41)
    )
    # 40 emails over at most one connection per thread (the official client's transport
    # opens one per email).
    assert 1 <= len(KeepAlive.connections) <= 4
    # The official client's headers, as it would have sent them.
    seen = KeepAlive.headers_seen[0]
    assert seen["Authorization"] == f"Bearer {KEY}"
    assert seen["User-Agent"].startswith("sendgrid/")
    assert seen["Content-Type"] == "application/json"


# --- choosing the sender ------------------------------------------------------------------


def test_build_sender_follows_the_settings(tmp_path: Path) -> None:
    outbox = build_sender(AppSettings(email={"outbox_dir": tmp_path}))  # type: ignore[arg-type]
    assert isinstance(outbox, FileOutboxSender)
    assert outbox.outbox_dir == tmp_path
    with pytest.raises(SettingsError, match="NUDGEFLOW_SENDGRID__API_KEY"):
        build_sender(AppSettings(email={"transport": "sendgrid"}))  # type: ignore[arg-type]
    sendgrid = build_sender(
        AppSettings(
            email={"transport": "sendgrid"},  # type: ignore[arg-type]
            sendgrid={  # type: ignore[arg-type]
                "api_key": SecretStr(KEY),
                "base_url": "http://127.0.0.1:1/",
                "sandbox_mode": True,
                "unsubscribe_group_id": 3,
            },
        )
    )
    assert isinstance(sendgrid, SendGridSender)
    assert sendgrid.sandbox_mode and sendgrid.unsubscribe_group_id == 3
    body = sendgrid.body(_message())
    assert json.dumps(body)  # serialisable as the client will send it
