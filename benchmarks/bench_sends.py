"""What one email and one reward cost: email-only dispatch against the official SendGrid
client's own ceiling, and Stripe requests per reward against the configured rate.

    python benchmarks/bench_sends.py [--emails 4000] [--rewards 600] [--workers 8]
        [--stripe-rate 20] [--rounds 3]

- **Email-only dispatch** (a campaign without reward: render, mark ``sending``, send, mark
  ``sent``, on SQLite) into a null HTTP server (HTTP/1.1, answers 202 at once) served from
  another process, next to the **baseline**: the official client (``SendGridAPIClient``,
  the body built by its helpers as ours is) sending the same number of emails from the
  same number of threads, and to our sender alone (no database). In ``--rounds`` rounds,
  each the client then a night of its own; the figure is the median of the rounds'
  ratios. Target: dispatch ≥ 0.8× the baseline.
- **Rewards per Stripe request** on a first attempt: a night of discount rewards dispatched
  against the Stripe fake (another process); the fake counts every request. Target 1.0
  (the campaign's coupon costs two more requests once per process).
- **Achieved Stripe rate vs configured**: the same night with ``--stripe-rate`` low enough
  that Stripe bounds it; requests the fake saw per second of dispatch. Target ≥ 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AS_OF = date(2026, 11, 20)
CAMPAIGNS = {
    "bench-plain": """
id: bench-plain
name: Benchmark nudge
priority: 50
audience:
  stage: [adopter, loyalist, advocate]
trigger: {on: anniversary, of: joined_at, years: 1}
email:
  template: review_request
  subject: "Hello {{ member.first_name }}"
response:
  counts_as: [purchase]
  within: 30d
""",
    "bench-discount": """
id: bench-discount
name: Benchmark discount
priority: 40
audience:
  stage: [adopter, loyalist, advocate]
trigger: {on: anniversary, of: joined_at, years: 1}
reward:
  kind: discount
  percent_off: 10
  expires_in: 30d
  cost_estimate: "2.00 USD"
email:
  template: tenure_courtesy_discount
  subject: "Thank you, {{ member.first_name }}"
response:
  counts_as: [reward_redeemed, purchase]
  within: 30d
""",
}


# -- the other process: a null SendGrid, and the Stripe fake -----------------------------


class NullHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open, as SendGrid's API does

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202)
        self.send_header("X-Message-Id", "null")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve() -> None:
    """Child mode: serve the null server and the Stripe fake, print their URLs; when stdin
    closes, print what the fake saw and this process's CPU time."""
    from tests.fakes.stripe_api import StripeFake

    customers = int(sys.argv[2])
    stripe = StripeFake().start()
    arrivals: list[float] = []  # when each request reached the fake
    handle = stripe.handle

    def timed_handle(*args: Any, **kwargs: Any) -> Any:
        arrivals.append(time.perf_counter())
        return handle(*args, **kwargs)

    stripe.handle = timed_handle  # type: ignore[method-assign]
    for n in range(customers):
        stripe.add_customer(f"cus_bench{n:07d}")
    null = ThreadingHTTPServer(("127.0.0.1", 0), NullHandler)
    null.daemon_threads = True
    threading.Thread(target=null.serve_forever, daemon=True).start()
    urls = {"stripe": stripe.url, "null": f"http://127.0.0.1:{null.server_address[1]}"}
    print(json.dumps(urls), flush=True)
    for line in sys.stdin:  # "count" → what the fake saw so far
        print(
            json.dumps(
                {
                    "stripe_requests": len(stripe.requests),
                    "promotion_code_requests": len(
                        stripe.requests_to("POST", "/v1/promotion_codes")
                    )
                    + len(stripe.requests_to("GET", "/v1/promotion_codes")),
                    "promotion_codes": len(stripe.promotion_codes),
                    "cpu_seconds": time.process_time(),
                    "arrivals": len(arrivals),
                    "first_arrival": arrivals[0] if arrivals else 0.0,
                    "last_arrival": arrivals[-1] if arrivals else 0.0,
                    "line": line.strip(),
                }
            ),
            flush=True,
        )
    null.shutdown()
    stripe.stop()


# -- this process ------------------------------------------------------------------------


def prepare(workdir: Path, campaign: str, count: int, name: str | None = None) -> str:
    """A SQLite database (``name``.db, by default the campaign's) with ``count`` members
    and a planned action of ``campaign`` each."""
    import sqlalchemy as sa

    from store.engine import create_store_engine
    from store.migrate import upgrade
    from store.schema import actions, members

    url = f"sqlite:///{workdir / ((name or campaign) + '.db')}"
    engine = create_store_engine(url)
    upgrade(engine)
    now = datetime(2026, 11, 20)
    rewarded = campaign == "bench-discount"
    with engine.begin() as connection:
        connection.execute(
            sa.insert(members),
            [
                {
                    "id": n + 1,
                    "member_id": f"b{n:07d}",
                    "email": f"member{n}@example.com",
                    "first_name": "Ada",
                    "last_name": f"Member{n}",
                    "timezone": "Europe/Paris",
                    "stripe_customer_id": f"cus_bench{n:07d}",
                    "email_opt_in": True,
                    "attributes": {},
                    "row_hash": "x",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(count)
            ],
        )
        connection.execute(
            sa.insert(actions),
            [
                {
                    "action_id": f"{n:032x}",
                    "campaign_id": campaign,
                    "member_pk": n + 1,
                    "occurrence": "2026",
                    "as_of": AS_OF,
                    "state": "planned",
                    "holdout": False,
                    "reward": {"kind": "discount", "percent_off": 10} if rewarded else None,
                    "cost_minor": 200 if rewarded else 0,
                    "currency": "USD" if rewarded else None,
                    "template": ("tenure_courtesy_discount" if rewarded else "review_request"),
                    "response_types": ["purchase"],
                    "response_from": 0,
                    "response_until": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(count)
            ],
        )
    engine.dispose()
    return url


def dispatch(url: str, urls: dict[str, str], args: argparse.Namespace) -> tuple[float, int, float]:
    """Dispatch the prepared night in this process: wall seconds, emails sent, CPU
    seconds of this process meanwhile."""
    os.environ.update(
        {
            "NUDGEFLOW_DATABASE_URL": url,
            "NUDGEFLOW_CAMPAIGNS_DIR": str(args.campaigns),
            "NUDGEFLOW_TEMPLATES_DIR": str(ROOT / "templates" / "email"),
            "NUDGEFLOW_REWARDS__PROVIDER": "stripe",
            "NUDGEFLOW_STRIPE__API_KEY": "sk_test_bench",
            "NUDGEFLOW_STRIPE__BASE_URL": urls["stripe"],
            "NUDGEFLOW_STRIPE__MAX_REQUESTS_PER_SECOND": str(args.stripe_rate),
            "NUDGEFLOW_EMAIL__TRANSPORT": "sendgrid",
            "NUDGEFLOW_SENDGRID__API_KEY": "SG.null-key",
            "NUDGEFLOW_SENDGRID__BASE_URL": urls["null"],
            "NUDGEFLOW_SENDGRID__MAX_REQUESTS_PER_SECOND": "100000",
            "NUDGEFLOW_DISPATCH__BATCH_SIZE": "200",
            "NUDGEFLOW_DISPATCH__MAX_WORKERS": str(args.workers),
        }
    )
    from bootstrap.app import build_app
    from night.dispatch import dispatch_night
    from night.lease import night_lease

    app = build_app()
    night = app.night(AS_OF)
    dispatcher = app.dispatcher(night)  # the providers' clients imported and built
    started, cpu = time.perf_counter(), time.process_time()
    with night_lease(app.engine, AS_OF, app.clock):
        outcome = dispatch_night(dispatcher, night.batch_size)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    app.issuer.close()
    close = getattr(app.sender, "close", None)
    if close is not None:
        close()
    app.engine.dispose()
    return wall, outcome.result.total("sent"), cpu


def messages(count: int) -> list[Any]:
    """``count`` emails as dispatch builds them (one rendered body, different addresses)."""
    from delivery.message import build_message
    from delivery.render import RenderedEmail

    rendered = RenderedEmail(
        subject="Hello Ada", html="<p>" + "Hello there. " * 60 + "</p>", text="Hello there. " * 60
    )
    return [
        build_message(
            rendered=rendered,
            action_id=f"{n:032x}",
            campaign_id="bench-plain",
            member_id=f"b{n:07d}",
            as_of=AS_OF,
            to_email=f"member{n}@example.com",
            to_name=f"Ada Member{n}",
            from_address="Shop <hello@shop.example>",
            unsubscribe_url=f"https://shop.example/u/{n}",
            send_at=None,
        )
        for n in range(count)
    ]


CPU: dict[str, float] = {}


def threaded(count: int, workers: int, send: Callable[[int], None]) -> float:
    """Seconds to call ``send(n)`` for n < count from ``workers`` threads (the CPU
    seconds of this process meanwhile in ``CPU["last"]``)."""
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(send, range(count)))
    CPU["last"] = time.process_time() - cpu
    return time.perf_counter() - started


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve()
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--emails", type=int, default=4000)
    parser.add_argument("--rewards", type=int, default=600)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the email figure")
    parser.add_argument("--stripe-rate", type=float, default=20.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="nudgeflow-bench-sends-", dir=args.workdir))
    args.campaigns = workdir / "campaigns"
    args.campaigns.mkdir()
    for name in ("lifecycle.yaml", "policy.yaml"):
        shutil.copy(ROOT / "campaigns" / name, args.campaigns / name)
    for name, text in CAMPAIGNS.items():
        (args.campaigns / f"{name}.yaml").write_text(text)

    fakes = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(args.rewards)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fakes.stdin is not None and fakes.stdout is not None
    urls = json.loads(fakes.stdout.readline())

    def seen() -> dict[str, Any]:
        assert fakes.stdin is not None and fakes.stdout is not None
        fakes.stdin.write("count\n")
        fakes.stdin.flush()
        return dict(json.loads(fakes.stdout.readline()))

    from sendgrid import SendGridAPIClient  # type: ignore[import-untyped]

    from providers.sendgrid import SendGridSender, sendgrid_body

    print(f"emails: {args.emails}, threads: {args.workers}, rounds: {args.rounds}")
    emails = messages(args.emails)

    # The baseline: the official client, as a user of it would send these emails.
    client = SendGridAPIClient(api_key="SG.null-key", host=urls["null"])
    threaded(200, args.workers, lambda n: client.send(sendgrid_body(emails[n])))  # warm up

    sender = SendGridSender(api_key="SG.null-key", host=urls["null"])
    threaded(200, args.workers, lambda n: sender.send(emails[n]) and None)  # warm up
    alone = threaded(args.emails, args.workers, lambda n: sender.send(emails[n]) and None)
    sender.close()
    print(f"our sender alone sends/s: {args.emails / alone:.1f}")
    print(f"our sender alone CPU per send (ms): {1000 * CPU['last'] / args.emails:.2f}")

    # Rounds: the client, then a night of the same number of emails, each round on a
    # database of its own. This machine's speed drifts from one ten seconds to the next,
    # so each dispatch is compared with the client run just before it, and the figure is
    # the median of the rounds' ratios.
    rounds: list[tuple[float, float, float, float]] = []  # client rate, CPU; ours, CPU
    for number in range(args.rounds):
        url = prepare(workdir, "bench-plain", args.emails, name=f"bench-plain-{number}")
        baseline = threaded(
            args.emails, args.workers, lambda n: client.send(sendgrid_body(emails[n]))
        )
        client_cpu = CPU["last"]
        wall, sent, cpu = dispatch(url, urls, args)
        assert sent == args.emails, (sent, args.emails)
        rounds.append((args.emails / baseline, client_cpu, sent / wall, cpu))
        print(
            f"round {number + 1}: sendgrid client {args.emails / baseline:.1f} sends/s "
            f"({1000 * client_cpu / args.emails:.2f} ms CPU each), dispatch "
            f"{sent / wall:.1f} emails/s ({1000 * cpu / sent:.2f} ms CPU each): "
            f"{(sent / wall) / (args.emails / baseline):.3f}",
            flush=True,
        )
    baseline_rate = statistics.median(r[0] for r in rounds)
    rate = statistics.median(r[2] for r in rounds)
    ratio = statistics.median(r[2] / r[0] for r in rounds)
    print(f"baseline: sendgrid client sends/s: {baseline_rate:.1f}")
    cpu_client = statistics.median(r[1] for r in rounds) / args.emails
    print(f"baseline: CPU per send (ms): {1000 * cpu_client:.2f}")
    print(f"email-only dispatch emails/s: {rate:.1f} ({ratio:.2f}x the baseline)")
    cpu_ours = statistics.median(r[3] for r in rounds) / args.emails
    print(f"email-only dispatch CPU per email (ms): {1000 * cpu_ours:.2f}")
    print(f"email_dispatch_over_client: {ratio:.3f}")

    # Rewards: one night of discounts against the Stripe fake, Stripe's rate the bound.
    reward_url = prepare(workdir, "bench-discount", args.rewards)
    before = seen()
    wall, sent, _cpu = dispatch(reward_url, urls, args)
    after = seen()
    requests = after["stripe_requests"] - before["stripe_requests"]
    codes = after["promotion_codes"] - before["promotion_codes"]
    per_reward = after["promotion_code_requests"] - before["promotion_code_requests"]
    print(f"rewards: {codes} issued, {sent} emails, {requests} Stripe requests in all")
    print(f"rewards per Stripe request: {codes / requests:.3f}")
    print(f"Stripe requests per reward, the coupon's apart: {per_reward / codes:.3f}")
    print(
        f"achieved Stripe rate over the dispatch (requests/s): {requests / wall:.1f} against "
        f"{args.stripe_rate:g} configured ({requests / wall / args.stripe_rate:.2f}x)"
    )
    # From the first request the fake saw to the last: the rate while Stripe was in use.
    # (Only this night uses Stripe: the email-only one before it makes no request.)
    held = (after["arrivals"] - 1) / (after["last_arrival"] - after["first_arrival"])
    print(
        f"achieved Stripe rate, first to last request (requests/s): {held:.1f} against "
        f"{args.stripe_rate:g} configured ({held / args.stripe_rate:.2f}x)"
    )
    print(f"rewards/s: {codes / wall:.1f}")
    print(f"rewards_per_stripe_request: {codes / requests:.3f}")
    print(f"reward_requests_per_reward: {per_reward / codes:.3f}")
    print(f"stripe_rate_over_configured: {held / args.stripe_rate:.3f}")
    fakes.stdin.close()
    fakes.wait()
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"finished: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
