"""A local SendGrid v3 mail-send server for tests: the real ``sendgrid`` client talks to it.

``POST /v3/mail/send`` bodies are validated against the official OpenAPI description
(vendored in ``tests/fakes/specs/sendgrid/``, MIT licence) with jsonschema, plus the
documented rules the schema cannot express: at most 1000 personalizations, ``custom_args``
at most 10,000 bytes, at most 10 categories, ``send_at`` at most 72 hours ahead,
``text/plain`` before ``text/html``, no reserved headers. A good body gets ``202`` with
``X-Message-Id`` and is recorded in ``messages``; a bad one gets SendGrid's ``400 {"errors":
[...]}``.

Faults are queued per request: ``fail_next(status)`` (429 comes with rate-limit headers),
``timeout_next()`` (holds the response past the client's timeout) and ``reset_next()``
(drops the connection with a TCP reset). With ``accept=True`` the message is recorded
before the fault, which is SendGrid accepting an email whose response never arrives
(``dropped`` lists those). ``fault_rate(rate, seed)`` gives a seeded share of all requests
a random fault (``injected`` lists the kinds drawn).

``EventWebhookSigner`` is SendGrid's other side: the Signed Event Webhook, with a generated
key pair, events carrying our custom args, and correctly signed POSTs of them.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC = Path(__file__).resolve().parent / "specs" / "sendgrid" / "tsg_mail_v3.json"
MAIL_SEND = "/v3/mail/send"
MAX_PERSONALIZATIONS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_SEND_AT_AHEAD = 72 * 3600
# Random fault kinds: error answers (nothing accepted, safe to retry), and the two ways an
# accepted email's answer is lost (held past the client's timeout, or a TCP reset).
RANDOM_FAULTS = ("429", "500", "502", "503", "timeout_accepted", "reset_accepted")
# Headers SendGrid does not let a sender set (the spec's description of `headers`).
RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}


def mail_send_validator(spec_path: Path = SPEC) -> Draft202012Validator:
    """A validator for mail-send bodies from the official OpenAPI document."""
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    components = copy.deepcopy(spec["components"])
    body = components["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"]
    # The spec types message-level custom_args as a string; SendGrid and its Python client
    # use an object of strings (see the README next to the spec).
    body["properties"]["custom_args"] = {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/components/requestBodies/PostMailSend/content/application~1json/schema",
        "components": components,
    }
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def limit_errors(body: dict[str, Any], now: float) -> Iterator[tuple[str | None, str]]:
    """SendGrid's documented rules beyond the schema, as ``(field, message)``."""
    personalizations = body.get("personalizations") or []
    if len(personalizations) > MAX_PERSONALIZATIONS:
        yield "personalizations", f"at most {MAX_PERSONALIZATIONS} personalizations"
    if len(body.get("categories") or []) > MAX_CATEGORIES:
        yield "categories", f"at most {MAX_CATEGORIES} categories"
    message_args = body.get("custom_args") or {}
    for index, p in enumerate(personalizations):
        merged = {**message_args, **(p.get("custom_args") or {})}
        if len(json.dumps(merged).encode()) > MAX_CUSTOM_ARGS_BYTES:
            yield f"personalizations.{index}.custom_args", "custom_args exceed 10,000 bytes"
    if not personalizations and len(json.dumps(message_args).encode()) > MAX_CUSTOM_ARGS_BYTES:
        yield "custom_args", "custom_args exceed 10,000 bytes"
    for where, holder in [("", body)] + [
        (f"personalizations.{i}.", p) for i, p in enumerate(personalizations)
    ]:
        send_at = holder.get("send_at")
        if isinstance(send_at, int) and send_at > now + MAX_SEND_AT_AHEAD:
            yield f"{where}send_at", "send_at cannot be more than 72 hours in the future"
        for name, value in (holder.get("headers") or {}).items():
            if name.lower() in RESERVED_HEADERS:
                yield f"{where}headers", f"header {name!r} cannot be set"
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                yield f"{where}headers", f"header {name!r} must be a one-line string"
    if "template_id" not in body:
        if not body.get("subject") and not all(p.get("subject") for p in personalizations):
            yield "subject", "a subject is required"
        content = body.get("content") or []
        if not content:
            yield "content", "content is required"
        types = [c.get("type") for c in content]
        if "text/plain" in types and types.index("text/plain") != 0:
            yield "content", "text/plain must be the first content type"
        if "text/html" in types and "text/plain" in types and types.index("text/html") != 1:
            yield "content", "text/html must come right after text/plain"


@dataclass
class Fault:
    kind: str  # status | timeout | reset
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    accept: bool = False  # record the message before failing (a lost response)


@dataclass(frozen=True)
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    message_id: str | None
    sandbox: bool


class FakeSendGrid:
    """The server; use as a context manager. ``url`` is the client's ``host``."""

    def __init__(
        self,
        api_key: str = "SG.fake-key",
        *,
        timeout_delay: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.timeout_delay = timeout_delay
        self.clock = clock
        self.validator = mail_send_validator()
        self.messages: list[Received] = []  # accepted (recorded) bodies, sandbox ones too
        self.attempts = 0  # every request to mail/send, faults included
        self.rejected: list[dict[str, Any]] = []  # 400 answers' errors
        self.dropped: list[Received] = []  # accepted, but the answer never reached the client
        self.injected: list[str] = []  # kinds of the random faults drawn
        self._faults: deque[Fault] = deque()
        self._random: tuple[float, random.Random, tuple[str, ...], float] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        # Join handler threads on close, so no thread outlives the test.
        self._server.daemon_threads = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeSendGrid:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()  # wakes handlers holding a response back
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    # --- faults ---------------------------------------------------------------------------

    def fail_next(
        self, status: int, *, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (429 adds rate-limit headers
        resetting one second from now unless ``headers`` says otherwise)."""
        extra = dict(headers or {})
        if status == 429:
            extra.setdefault("X-RateLimit-Limit", "600")
            extra.setdefault("X-RateLimit-Remaining", "0")
            extra.setdefault("X-RateLimit-Reset", str(int(self.clock()) + 1))
        with self._lock:
            self._faults.extend(Fault("status", status, extra) for _ in range(times))

    def timeout_next(self, *, times: int = 1, accept: bool = False) -> None:
        with self._lock:
            self._faults.extend(Fault("timeout", accept=accept) for _ in range(times))

    def reset_next(self, *, times: int = 1, accept: bool = False) -> None:
        with self._lock:
            self._faults.extend(Fault("reset", accept=accept) for _ in range(times))

    def fault_rate(
        self,
        rate: float,
        seed: int = 0,
        *,
        kinds: tuple[str, ...] = RANDOM_FAULTS,
        reset_after: float = 0.25,
    ) -> None:
        """Give a seeded share ``rate`` of the requests (after any queued faults) a fault
        drawn from ``kinds``: ``429`` (rate-limit headers resetting ``reset_after`` seconds
        ahead, at most a second: fractional, where SendGrid sends whole seconds, so tests
        stay fast), a 5xx status, or ``timeout_accepted`` / ``reset_accepted`` (the email is
        recorded, then its answer is held past ``timeout_delay`` or the connection reset).
        ``rate`` 0 switches it off."""
        unknown = set(kinds) - set(RANDOM_FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; expected some of {RANDOM_FAULTS}")
        with self._lock:
            self._random = (
                (rate, random.Random(seed), tuple(kinds), min(1.0, reset_after))
                if rate > 0
                else None
            )

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._random is None:
                return None
            rate, rng, kinds, reset_after = self._random
            if rng.random() >= rate:
                return None
            kind = rng.choice(kinds)
            self.injected.append(kind)
        if kind.endswith("_accepted"):
            return Fault(kind.removesuffix("_accepted"), accept=True)
        status = int(kind)
        headers: dict[str, str] = {}
        if status == 429:
            headers = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{self.clock() + reset_after:.3f}",
            }
        return Fault("status", status, headers)

    # --- the protocol ---------------------------------------------------------------------

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> Received:
        sandbox = bool(((body.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable"))
        with self._lock:
            message_id = None if sandbox else f"fake-{len(self.messages) + 1:06d}"
            received = Received(body, headers, message_id, sandbox)
            self.messages.append(received)
        return received

    def _errors(self, body: Any) -> list[dict[str, Any]]:
        errors = [
            {
                "field": ".".join(str(p) for p in e.absolute_path) or None,
                "message": e.message,
                "help": None,
            }
            for e in self.validator.iter_errors(body)
        ]
        if not errors and isinstance(body, dict):
            found = limit_errors(body, self.clock())
            errors = [{"field": f, "message": m, "help": None} for f, m in found]
        return errors

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Small separate writes: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _answer(
                self, status: int, payload: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                data = b"" if payload is None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    if data:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout fault): nothing to tell it

            def _reset(self) -> None:
                # SO_LINGER 0 makes close() send RST instead of FIN: a dropped connection.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != MAIL_SEND:
                    self._answer(404, {"errors": [{"field": None, "message": "not found"}]})
                    return
                with fake._lock:
                    fake.attempts += 1
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    message = "The provided authorization grant is invalid, expired, or revoked"
                    self._answer(401, {"errors": [{"field": None, "message": message}]})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._answer(400, {"errors": [{"field": None, "message": "invalid JSON"}]})
                    return
                errors = fake._errors(body)
                if errors:
                    with fake._lock:
                        fake.rejected.append({"body": body, "errors": errors})
                    self._answer(400, {"errors": errors})
                    return
                headers = {k: v for k, v in self.headers.items()}
                fault = fake._next_fault()
                if fault is not None:
                    if fault.accept:
                        dropped = fake._record(body, headers)
                        with fake._lock:
                            fake.dropped.append(dropped)
                    if fault.kind == "timeout":
                        fake._stop.wait(fake.timeout_delay)
                        self._answer(202, None, {"X-Message-Id": "too-late"})
                    elif fault.kind == "reset":
                        self._reset()
                    else:
                        message = "too many requests" if fault.status == 429 else "failure"
                        self._answer(
                            fault.status,
                            {"errors": [{"field": None, "message": message}]},
                            fault.headers,
                        )
                    return
                received = fake._record(body, headers)
                if received.sandbox:
                    self._answer(200)
                else:
                    self._answer(202, None, {"X-Message-Id": received.message_id or ""})

        return Handler


# -- the Event Webhook ---------------------------------------------------------------------

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class EventWebhookSigner:
    """SendGrid's side of the Signed Event Webhook: a generated ECDSA P-256 key pair, the
    public key exported as SendGrid's dashboard shows it (base64 of the DER
    SubjectPublicKeyInfo, no PEM armour), and signed POSTs: the signature is ECDSA/SHA-256
    over the timestamp header's text followed by the raw body, base64 of its DER form."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.generate_private_key(ec.SECP256R1())
        self._seq = 0

    @property
    def public_key(self) -> str:
        from cryptography.hazmat.primitives import serialization

        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: int) -> dict[str, str]:
        """The two headers SendGrid sends with ``body`` at ``timestamp`` (epoch seconds)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        stamp = str(timestamp)
        signature = self._key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
            TIMESTAMP_HEADER: stamp,
        }

    def event(
        self,
        kind: str,
        action_id: str | None,
        *,
        campaign_id: str = "welcome",
        timestamp: int = 1_767_225_600,
        email: str = "member@example.com",
        **extra: Any,
    ) -> dict[str, Any]:
        """One event as SendGrid posts it: our custom_args echoed as top-level keys, a fresh
        ``sg_event_id``."""
        self._seq += 1
        event: dict[str, Any] = {
            "email": email,
            "timestamp": timestamp,
            "event": kind,
            "sg_event_id": f"sg_{self._seq:06d}_{random.getrandbits(40):010x}",
            "sg_message_id": f"msg_{self._seq:06d}.filter0001",
            "smtp-id": f"<{self._seq}@example.com>",
        }
        if action_id is not None:
            event["action_id"] = action_id
            event["campaign_id"] = campaign_id
        event.update(extra)
        return event

    def request(self, events: list[dict[str, Any]], timestamp: int) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one Event Webhook POST of ``events``."""
        body = json.dumps(events, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **self.sign(body, timestamp)}
        return body, headers
