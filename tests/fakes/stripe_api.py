"""A local Stripe API for tests: the real ``stripe`` client is pointed at it.

It speaks the wire protocol of the endpoints nudgeflow uses — form-encoded bodies with
nested keys (``metadata[action_id]=…``), Stripe-shaped JSON objects and lists, Stripe's
error shape and status codes — and keeps Stripe's idempotency semantics: the same
``Idempotency-Key`` with the same parameters replays the stored response, with different
parameters it is a 400 ``idempotency_error``, and while the first request is still running
a second one gets 409.

Faults are switched on per test with :meth:`StripeFake.fail_next` (a forced 429, 5xx, 409,
a timeout, a connection reset, or a response dropped *after* the object was created),
:meth:`StripeFake.set_rate_limit` (a token bucket answering 429 with rate-limit headers) and
:meth:`StripeFake.fault_rate` (a seeded share of all requests get a random fault;
``fake.injected`` lists them).
:meth:`StripeFake.signed_webhook` gives the signed webhook POST of any event it lists, as
Stripe would send it to an endpoint whose secret is ``fake.webhook_secret``.
Every request is recorded (``fake.requests``) and every object kept (``fake.coupons``,
``fake.promotion_codes``, …) so tests can assert "exactly one object per action".

Endpoints::

    POST/GET  /v1/coupons[/id]                 GET /v1/customers/:id
    POST/GET  /v1/promotion_codes[/id]          POST/GET /v1/customers/:id/balance_transactions
    GET       /v1/events[/id]
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import random
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2026-10-28.endive"
FAULTS = ("429", "409", "500", "502", "503", "timeout", "drop", "reset")


class StripeFailure(Exception):
    """An error response: Stripe's ``{"error": {...}}`` with a status code."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "error": {"type": type_, "message": message, "code": code, "param": param}
        }


def _missing(kind: str, ident: str, param: str = "id") -> StripeFailure:
    return StripeFailure(404, f"No such {kind}: '{ident}'", code="resource_missing", param=param)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, Any]
    params: dict[str, Any]
    idempotency_key: str | None
    status: int | None  # None when no response was sent (dropped, reset, timed out)


@dataclass
class _Fault:
    kind: str
    times: int
    method: str | None
    path: re.Pattern[str] | None
    retry_after: float
    delay: float

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass
class _Bucket:
    rate: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """Take a token; return 0, or the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest Stripe's form keys: ``a[b][c]=v`` → ``{"a": {"b": {"c": "v"}}}``; indexed keys
    (``types[0]``, ``types[]``) become lists."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        head, _, rest = raw_key.partition("[")
        parts = [head] + (re.findall(r"\[([^\]]*)\]", "[" + rest) if rest else [])
        node = root
        for position, part in enumerate(parts):
            last = position == len(parts) - 1
            if part == "":  # "types[]": append
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    values = {key: _listify(value) for key, value in node.items()}
    if values and all(key.isdigit() for key in values):
        return [values[key] for key in sorted(values, key=int)]
    return values


def _int(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise StripeFailure(400, f"Missing required param: {name}.", param=name)
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeFailure(400, f"Invalid integer: {value}", param=name) from None


def _metadata(params: dict[str, Any]) -> dict[str, str]:
    value = params.get("metadata") or {}
    if not isinstance(value, dict):
        raise StripeFailure(400, "Invalid object", param="metadata")
    return {str(k): str(v) for k, v in value.items() if v != ""}


class StripeFake:
    """The fake's state and controls; :meth:`start` serves it on 127.0.0.1 (port 0)."""

    def __init__(self, *, api_key_prefix: str = "sk_test_") -> None:
        self.api_key_prefix = api_key_prefix
        self.coupons: dict[str, dict[str, Any]] = {}
        self.promotion_codes: dict[str, dict[str, Any]] = {}
        self._codes: dict[str, list[str]] = {}  # lower-cased code → promotion code ids
        self.customers: dict[str, dict[str, Any]] = {}
        self.balance_transactions: dict[str, dict[str, Any]] = {}
        self.discounts: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.clock: Callable[[], int] = lambda: int(time.time())
        self._idempotency: dict[str, tuple[str, str, Any, int, bytes]] = {}
        self._in_flight: set[str] = set()
        self._faults: list[_Fault] = []
        self._random: tuple[float, random.Random, tuple[str, ...], float, float] | None = None
        self.injected: list[tuple[str, str, str]] = []  # (kind, method, path) of random faults
        self._bucket: _Bucket | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._seq = 0
        # The signing secret of a webhook endpoint pointed at the service (``signed_webhook``).
        self.webhook_secret = "whsec_" + secrets.token_hex(16)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> StripeFake:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Handler threads are joined on close, so a test never leaves one running.
        self._server.daemon_threads = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping for a timeout fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> StripeFake:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- controls ----------------------------------------------------------------------

    def fail_next(
        self,
        kind: str,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float = 0.05,
        delay: float = 2.0,
    ) -> None:
        """Answer the next ``times`` matching requests with a fault.

        ``429``/``409``/``5xx``: an error response, nothing processed. ``timeout``: sleep
        ``delay`` seconds (past the client's timeout), then close without processing.
        ``reset``: a TCP reset, nothing processed. ``drop``: process the request (the object
        is created and the idempotent result stored), then close without replying.
        ``path`` is a regular expression searched in the request path.
        """
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {FAULTS}")
        with self._lock:
            self._faults.append(
                _Fault(
                    kind,
                    times,
                    method.upper() if method else None,
                    re.compile(path) if path else None,
                    retry_after,
                    delay,
                )
            )

    def fault_rate(
        self,
        rate: float,
        seed: int = 0,
        *,
        kinds: tuple[str, ...] = ("429", "409", "500", "502", "503", "timeout", "drop", "reset"),
        retry_after: float = 0.05,
        delay: float = 0.2,
    ) -> None:
        """Give a seeded share ``rate`` of all requests (after any :meth:`fail_next`
        faults) a fault drawn from ``kinds``, as :meth:`fail_next` describes them; a
        ``timeout`` holds the connection ``delay`` seconds. ``rate`` 0 switches it off."""
        unknown = set(kinds) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; expected some of {FAULTS}")
        with self._lock:
            self._random = (
                (rate, random.Random(seed), tuple(kinds), retry_after, delay) if rate > 0 else None
            )

    def set_rate_limit(self, per_second: float | None) -> None:
        """Answer 429 once more than ``per_second`` requests arrive in a second (burst =
        rate); ``None`` switches limiting off."""
        with self._lock:
            self._bucket = _Bucket(per_second, per_second) if per_second else None

    def forget_idempotency_keys(self) -> None:
        """What Stripe does after 24 hours."""
        with self._lock:
            self._idempotency.clear()

    def add_customer(
        self, customer_id: str, *, email: str | None = None, currency: str | None = None
    ) -> dict[str, Any]:
        with self._lock:
            customer = {
                "id": customer_id,
                "object": "customer",
                "balance": 0,
                "created": self.clock(),
                "currency": currency,
                "default_source": None,
                "delinquent": False,
                "description": None,
                "discount": None,
                "email": email,
                "invoice_prefix": customer_id[-8:].upper(),
                "livemode": False,
                "metadata": {},
                "name": None,
            }
            self.customers[customer_id] = customer
            return customer

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    def objects_with_metadata(self, key: str, value: str) -> list[dict[str, Any]]:
        """Every coupon, promotion code and balance transaction carrying ``key=value``."""
        with self._lock:
            pools = (self.coupons, self.promotion_codes, self.balance_transactions)
            return [
                obj
                for pool in pools
                for obj in pool.values()
                if (obj.get("metadata") or {}).get(key) == value
            ]

    # -- events (for the sync tests) -----------------------------------------------------

    def emit(self, type_: str, obj: dict[str, Any], *, created: int | None = None) -> str:
        """Append an event carrying a snapshot of ``obj``; return its id."""
        with self._lock:
            event = {
                "id": self._id("evt"),
                "object": "event",
                "api_version": API_VERSION,
                "created": created if created is not None else self.clock(),
                "data": {"object": json.loads(json.dumps(obj))},
                "livemode": False,
                "pending_webhooks": 0,
                "request": {"id": None, "idempotency_key": None},
                "type": type_,
            }
            self.events.append(event)
            return str(event["id"])

    def apply_promotion_code(
        self, promotion_code_id: str, *, created: int | None = None
    ) -> dict[str, Any]:
        """The customer redeems the code: a discount and ``customer.discount.created``."""
        with self._lock:
            promo = self.promotion_codes[promotion_code_id]
            promo["times_redeemed"] += 1
            if promo["max_redemptions"] and promo["times_redeemed"] >= promo["max_redemptions"]:
                promo["active"] = False
            discount = {
                "id": self._id("di"),
                "object": "discount",
                "checkout_session": None,
                "customer": promo["customer"],
                "end": None,
                "invoice": None,
                "invoice_item": None,
                "promotion_code": promotion_code_id,
                "source": {"coupon": promo["promotion"]["coupon"], "type": "coupon"},
                "start": created if created is not None else self.clock(),
                "subscription": None,
                "subscription_item": None,
            }
            self.discounts[discount["id"]] = discount
            self.emit("customer.discount.created", discount, created=created)
            return discount

    def pay_invoice(
        self,
        customer: str,
        discounts: dict[str, int],
        *,
        subtotal: int = 10_000,
        currency: str = "usd",
        expand_discounts: bool = False,
        created: int | None = None,
    ) -> str:
        """An ``invoice.paid`` event whose ``total_discount_amounts`` give each discount id's
        amount. Like a real event snapshot, ``discounts`` holds ids unless expanded."""
        with self._lock:
            total_off = sum(discounts.values())
            invoice = {
                "id": self._id("in"),
                "object": "invoice",
                "amount_paid": subtotal - total_off,
                "currency": currency,
                "customer": customer,
                "discounts": [self.discounts[d] if expand_discounts else d for d in discounts],
                "livemode": False,
                "status": "paid",
                "subtotal": subtotal,
                "total": subtotal - total_off,
                "total_discount_amounts": [
                    {"amount": amount, "discount": d} for d, amount in discounts.items()
                ],
            }
            return self.emit("invoice.paid", invoice, created=created)

    # -- webhooks ------------------------------------------------------------------------

    def signed_webhook(
        self, event_id: str, *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of Stripe's webhook POST of the event ``event_id`` (the same
        object ``/v1/events`` lists): ``Stripe-Signature: t=…,v1=…``, the HMAC-SHA256 of
        ``"{t}.{body}"`` with the endpoint's secret (``webhook_secret`` unless given)."""
        [event] = [event for event in self.events if event["id"] == event_id]
        body = json.dumps(event, indent=2).encode()
        stamp = self.clock() if timestamp is None else timestamp
        mac = hmac.new(
            (secret or self.webhook_secret).encode(), f"{stamp}.".encode() + body, hashlib.sha256
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={stamp},v1={mac.hexdigest()}",
        }
        return body, headers

    # -- request handling ----------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._seq:06d}{secrets.token_hex(6)}"

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault
            if self._random is not None:
                rate, rng, kinds, retry_after, delay = self._random
                if rng.random() < rate:
                    kind = rng.choice(kinds)
                    self.injected.append((kind, method, path))
                    return _Fault(kind, 1, None, None, retry_after, delay)
            return None

    def _rate_limited(self) -> float:
        with self._lock:
            return self._bucket.take() if self._bucket is not None else 0.0

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        params: dict[str, Any],
        pairs: list[tuple[str, str]],
        key: str | None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """Process one authorised request; returns status, body and extra headers."""
        if method != "POST" or not key:
            status, body = self._dispatch(method, path, query, params)
            return status, body, {}
        fingerprint = (method, path, sorted(pairs))
        with self._lock:
            stored = self._idempotency.get(key)
            if stored is None and key in self._in_flight:
                failure = StripeFailure(
                    409,
                    "There is currently another in-progress request using this "
                    "Idempotent Key (that probably means you submitted twice, and the "
                    "other request is still going through).",
                    type_="idempotency_error",
                    code="idempotency_key_in_use",
                )
                return 409, json.dumps(failure.body).encode(), {}
            if stored is not None:
                if stored[:3] != fingerprint:
                    failure = StripeFailure(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        type_="idempotency_error",
                    )
                    return 400, json.dumps(failure.body).encode(), {}
                return stored[3], stored[4], {"Idempotent-Replayed": "true"}
            self._in_flight.add(key)
        try:
            status, body = self._dispatch(method, path, query, params)
            # Stripe saves the result once the endpoint started executing: successes and
            # server errors, not parameter validation failures.
            if status == 200 or status >= 500:
                with self._lock:
                    self._idempotency[key] = (*fingerprint, status, body)
            return status, body, {}
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def _dispatch(
        self, method: str, path: str, query: dict[str, Any], params: dict[str, Any]
    ) -> tuple[int, bytes]:
        for route_method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                try:
                    given = query if method == "GET" else params
                    with self._lock:
                        result = handler(self, given, *match.groups())
                    return 200, json.dumps(result).encode()
                except StripeFailure as failure:
                    return failure.status, json.dumps(failure.body).encode()
        failure = StripeFailure(404, f"Unrecognized request URL ({method}: {path}).")
        return 404, json.dumps(failure.body).encode()

    # -- endpoints -----------------------------------------------------------------------

    def _list(self, items: list[dict[str, Any]], query: dict[str, Any], url: str) -> dict[str, Any]:
        """Stripe's cursor pagination, newest first: ``starting_after`` pages towards older
        objects; ``ending_before`` gives the ``limit`` objects just newer than the cursor
        (still newest first), ``has_more`` saying whether newer ones remain."""
        ordered = sorted(items, key=lambda o: (o["created"], o["id"]), reverse=True)
        limit = _int(query, "limit") or 10
        if not 1 <= limit <= 100:
            raise StripeFailure(400, "Invalid limit: must be between 1 and 100", param="limit")
        after, before = query.get("starting_after"), query.get("ending_before")
        if after and before:
            raise StripeFailure(
                400, "You may only specify one of these parameters: ending_before, starting_after."
            )
        ids = [o["id"] for o in ordered]
        if before:
            if before not in ids:
                raise _missing("object", before, "ending_before")
            newer = ordered[: ids.index(before)]
            return {
                "object": "list",
                "data": newer[-limit:],
                "has_more": len(newer) > limit,
                "url": url,
            }
        if after:
            if after not in ids:
                raise _missing("object", after, "starting_after")
            ordered = ordered[ids.index(after) + 1 :]
        return {
            "object": "list",
            "data": ordered[:limit],
            "has_more": len(ordered) > limit,
            "url": url,
        }

    @staticmethod
    def _created_filter(items: list[dict[str, Any]], created: Any) -> list[dict[str, Any]]:
        if created is None:
            return items
        if not isinstance(created, dict):
            return [o for o in items if o["created"] == int(created)]
        checks = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        for op, bound in created.items():
            if op not in checks:
                raise StripeFailure(400, f"Received unknown parameter: created[{op}]")
            items = [o for o in items if checks[op](o["created"], int(bound))]
        return items

    def create_coupon(self, params: dict[str, Any]) -> dict[str, Any]:
        coupon_id = params.get("id") or self._id("cpn")[:12]
        if coupon_id in self.coupons:
            raise StripeFailure(
                400, "Coupon already exists.", code="resource_already_exists", param="id"
            )
        percent = params.get("percent_off")
        amount = _int(params, "amount_off")
        if (percent is None) == (amount is None):
            raise StripeFailure(400, "You must pass either amount_off or percent_off.")
        if amount is not None and not params.get("currency"):
            raise StripeFailure(400, "You must pass currency with amount_off.", param="currency")
        duration = params.get("duration", "once")
        if duration not in ("once", "forever", "repeating"):
            raise StripeFailure(400, f"Invalid duration: {duration}", param="duration")
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "amount_off": amount,
            "created": self.clock(),
            "currency": str(params["currency"]).lower() if params.get("currency") else None,
            "duration": duration,
            "duration_in_months": _int(params, "duration_in_months"),
            "livemode": False,
            "max_redemptions": _int(params, "max_redemptions"),
            "metadata": _metadata(params),
            "name": params.get("name"),
            "percent_off": float(percent) if percent is not None else None,
            "redeem_by": _int(params, "redeem_by"),
            "times_redeemed": 0,
            "valid": True,
        }
        self.coupons[coupon_id] = coupon
        return coupon

    def get_coupon(self, _query: dict[str, Any], coupon_id: str) -> dict[str, Any]:
        if coupon_id not in self.coupons:
            raise _missing("coupon", coupon_id)
        return self.coupons[coupon_id]

    def list_coupons(self, query: dict[str, Any]) -> dict[str, Any]:
        return self._list(list(self.coupons.values()), query, "/v1/coupons")

    def create_promotion_code(self, params: dict[str, Any]) -> dict[str, Any]:
        promotion = params.get("promotion") or {}
        if not isinstance(promotion, dict) or promotion.get("type") != "coupon":
            raise StripeFailure(400, "Missing required param: promotion[type].", param="promotion")
        coupon_id = promotion.get("coupon")
        if not coupon_id or coupon_id not in self.coupons:
            raise _missing("coupon", str(coupon_id), "promotion[coupon]")
        customer = params.get("customer")
        if customer is not None and customer not in self.customers:
            raise _missing("customer", customer, "customer")
        code = params.get("code") or secrets.token_hex(4).upper()
        if not re.fullmatch(r"[A-Za-z0-9-]{1,500}", code):
            raise StripeFailure(400, "Invalid code.", param="code")
        same_code = (self.promotion_codes.get(i) for i in self._codes.get(code.lower(), []))
        for other in (promo for promo in same_code if promo is not None):
            if (
                other["active"]
                and other["code"].lower() == code.lower()
                and other["customer"] == customer
            ):
                raise StripeFailure(
                    400,
                    "An active promotion code with `code: " + code + "` already exists.",
                    code="duplicate_promotion_code",
                    param="code",
                )
        expires_at = _int(params, "expires_at")
        if expires_at is not None and expires_at <= self.clock():
            raise StripeFailure(400, "expires_at must be in the future.", param="expires_at")
        restrictions = params.get("restrictions") or {}
        promo = {
            "id": self._id("promo"),
            "object": "promotion_code",
            "active": params.get("active", "true") != "false",
            "code": code,
            "created": self.clock(),
            "customer": customer,
            "customer_account": None,
            "expires_at": expires_at,
            "livemode": False,
            "max_redemptions": _int(params, "max_redemptions"),
            "metadata": _metadata(params),
            "promotion": {"coupon": coupon_id, "type": "coupon"},
            "restrictions": {
                "first_time_transaction": restrictions.get("first_time_transaction") == "true",
                "minimum_amount": _int(restrictions, "minimum_amount"),
                "minimum_amount_currency": restrictions.get("minimum_amount_currency"),
            },
            "times_redeemed": 0,
        }
        self.promotion_codes[promo["id"]] = promo
        self._codes.setdefault(promo["code"].lower(), []).append(promo["id"])
        self.emit("promotion_code.created", promo)
        return promo

    def get_promotion_code(self, _query: dict[str, Any], promo_id: str) -> dict[str, Any]:
        if promo_id not in self.promotion_codes:
            raise _missing("promotion_code", promo_id)
        return self.promotion_codes[promo_id]

    def update_promotion_code(self, params: dict[str, Any], promo_id: str) -> dict[str, Any]:
        promo = self.get_promotion_code({}, promo_id)
        unknown = set(params) - {"active", "metadata", "restrictions", "expand"}
        if unknown:
            raise StripeFailure(400, f"Received unknown parameter: {sorted(unknown)[0]}")
        if "active" in params:
            if params["active"] == "true" and not promo["active"]:
                raise StripeFailure(400, "An inactive promotion code cannot be reactivated.")
            promo["active"] = params["active"] == "true"
        promo["metadata"].update(_metadata(params))
        return promo

    def list_promotion_codes(self, query: dict[str, Any]) -> dict[str, Any]:
        if query.get("code"):  # by the index: the benchmark lists 100k codes one by one
            ids = self._codes.get(query["code"].lower(), [])
            # Tests may drop objects from `promotion_codes` directly: skip what is gone.
            items = [self.promotion_codes[i] for i in ids if i in self.promotion_codes]
        else:
            items = list(self.promotion_codes.values())
        if query.get("customer"):
            items = [p for p in items if p["customer"] == query["customer"]]
        if query.get("coupon"):
            items = [p for p in items if p["promotion"]["coupon"] == query["coupon"]]
        if "active" in query:
            items = [p for p in items if p["active"] == (query["active"] == "true")]
        items = self._created_filter(items, query.get("created"))
        return self._list(items, query, "/v1/promotion_codes")

    def get_customer(self, _query: dict[str, Any], customer_id: str) -> dict[str, Any]:
        if customer_id not in self.customers:
            raise _missing("customer", customer_id)
        return self.customers[customer_id]

    def create_balance_transaction(
        self, params: dict[str, Any], customer_id: str
    ) -> dict[str, Any]:
        customer = self.get_customer({}, customer_id)
        amount = _int(params, "amount", required=True)
        assert amount is not None
        currency = params.get("currency")
        if not currency:
            raise StripeFailure(400, "Missing required param: currency.", param="currency")
        currency = str(currency).lower()
        if customer["currency"] and customer["currency"] != currency:
            raise StripeFailure(
                400,
                f"The currency {currency} does not match the customer's currency "
                f"{customer['currency']}.",
                param="currency",
            )
        customer["currency"] = currency
        customer["balance"] += amount
        transaction = {
            "id": self._id("cbtxn"),
            "object": "customer_balance_transaction",
            "amount": amount,
            "checkout_session": None,
            "created": self.clock(),
            "credit_note": None,
            "currency": currency,
            "customer": customer_id,
            "description": params.get("description"),
            "ending_balance": customer["balance"],
            "invoice": None,
            "livemode": False,
            "metadata": _metadata(params),
            "type": "adjustment",
        }
        self.balance_transactions[transaction["id"]] = transaction
        return transaction

    def list_balance_transactions(self, query: dict[str, Any], customer_id: str) -> dict[str, Any]:
        self.get_customer({}, customer_id)
        items = [t for t in self.balance_transactions.values() if t["customer"] == customer_id]
        items = self._created_filter(items, query.get("created"))
        return self._list(items, query, f"/v1/customers/{customer_id}/balance_transactions")

    def list_events(self, query: dict[str, Any]) -> dict[str, Any]:
        items = list(self.events)
        if query.get("type"):
            wanted = query["type"]
            if wanted.endswith(".*"):
                items = [e for e in items if e["type"].startswith(wanted[:-1])]
            else:
                items = [e for e in items if e["type"] == wanted]
        if query.get("types"):
            types = query["types"]
            if not isinstance(types, list):
                raise StripeFailure(400, "Invalid array", param="types")
            items = [e for e in items if e["type"] in types]
        items = self._created_filter(items, query.get("created"))
        return self._list(items, query, "/v1/events")

    def get_event(self, _query: dict[str, Any], event_id: str) -> dict[str, Any]:
        for event in self.events:
            if event["id"] == event_id:
                return event
        raise _missing("event", event_id)


_Route = tuple[str, re.Pattern[str], Callable[..., dict[str, Any]]]
_ROUTES: list[_Route] = [
    ("POST", re.compile(r"/v1/coupons"), StripeFake.create_coupon),
    ("GET", re.compile(r"/v1/coupons"), StripeFake.list_coupons),
    ("GET", re.compile(r"/v1/coupons/([^/]+)"), StripeFake.get_coupon),
    ("POST", re.compile(r"/v1/promotion_codes"), StripeFake.create_promotion_code),
    ("GET", re.compile(r"/v1/promotion_codes"), StripeFake.list_promotion_codes),
    ("GET", re.compile(r"/v1/promotion_codes/([^/]+)"), StripeFake.get_promotion_code),
    ("POST", re.compile(r"/v1/promotion_codes/([^/]+)"), StripeFake.update_promotion_code),
    ("GET", re.compile(r"/v1/customers/([^/]+)"), StripeFake.get_customer),
    (
        "POST",
        re.compile(r"/v1/customers/([^/]+)/balance_transactions"),
        StripeFake.create_balance_transaction,
    ),
    (
        "GET",
        re.compile(r"/v1/customers/([^/]+)/balance_transactions"),
        StripeFake.list_balance_transactions,
    ),
    ("GET", re.compile(r"/v1/events"), StripeFake.list_events),
    ("GET", re.compile(r"/v1/events/([^/]+)"), StripeFake.get_event),
]


class _Handler(BaseHTTPRequestHandler):
    owner: StripeFake
    # HTTP/1.0: one request per connection, so no handler thread lingers on a kept-alive
    # socket and the server closes cleanly at the end of a test.
    protocol_version = "HTTP/1.0"
    # Headers and body leave in separate small writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK hold each answer back by up to 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.owner
        split = urlsplit(self.path)
        path = split.path.rstrip("/")
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(body, keep_blank_values=True)
        query = parse_form(query_pairs)
        params = parse_form(pairs)
        key = self.headers.get("Idempotency-Key")

        def record(status: int | None) -> None:
            with fake._lock:
                fake.requests.append(RecordedRequest(method, path, query, params, key, status))

        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer " + fake.api_key_prefix):
            record(401)
            failure = StripeFailure(401, "Invalid API Key provided.", code="api_key_invalid")
            self._reply(401, json.dumps(failure.body).encode())
            return

        fault = fake._take_fault(method, path)
        if fault is not None and fault.kind in ("429", "409", "500", "502", "503"):
            record(int(fault.kind))
            self._fault_reply(fault)
            return
        if fault is not None and fault.kind == "timeout":
            record(None)
            fake._stopping.wait(fault.delay)
            self.close_connection = True
            return
        if fault is not None and fault.kind == "reset":
            record(None)
            self._reset()
            return

        wait = fake._rate_limited()
        if wait > 0:
            record(429)
            self._rate_limit_reply(wait)
            return

        status, payload, headers = fake.handle(method, path, query, params, pairs, key)
        if fault is not None and fault.kind == "drop":
            record(None)
            self.close_connection = True  # the object exists; the client never hears of it
            return
        record(status)
        self._reply(status, payload, headers)

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(8))
        self.send_header("Stripe-Version", API_VERSION)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _fault_reply(self, fault: _Fault) -> None:
        status = int(fault.kind)
        if status == 429:
            self._rate_limit_reply(fault.retry_after)
            return
        if status == 409:
            failure = StripeFailure(
                409,
                "There is currently another in-progress request using this Idempotent Key.",
                type_="idempotency_error",
                code="idempotency_key_in_use",
            )
        else:
            failure = StripeFailure(
                status, "An unknown error occurred on Stripe's servers.", type_="api_error"
            )
        self._reply(status, json.dumps(failure.body).encode(), {"Stripe-Should-Retry": "true"})

    def _rate_limit_reply(self, wait: float) -> None:
        failure = StripeFailure(
            429,
            "Too many requests hit the API too quickly. We recommend an exponential backoff "
            "of your requests.",
            code="rate_limit",
        )
        headers = {
            # Stripe's Retry-After is whole seconds; the fake sends fractions so tests stay
            # fast, and the client under test must parse either.
            "Retry-After": f"{wait:.3f}",
            "X-RateLimit-Limit": "25",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time() + wait) + 1),
            "Stripe-Should-Retry": "true",
        }
        self._reply(429, json.dumps(failure.body).encode(), headers)

    def _reset(self) -> None:
        """Close with RST instead of FIN: the client sees 'connection reset by peer'."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Closed here, before socketserver's shutdown(SHUT_WR) could send a polite FIN; the
        # descriptor really closes once the handler's files are closed in finish().
        self.connection.close()


def serve() -> Iterator[StripeFake]:
    """A started fake, stopped afterwards (for ``yield from`` in fixtures)."""
    fake = StripeFake().start()
    try:
        yield fake
    finally:
        fake.stop()
