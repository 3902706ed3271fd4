"""Dispatching a night of N actions into the Stripe and SendGrid fakes.

    python benchmarks/bench_dispatch.py --actions 100000 [--stripe-rate 2000]
        [--sendgrid-rate 2000] [--workers 8] [--batch 200] [--mode both|plain|prefect]

Each action is a discount campaign's nudge: reserve in the ledger, a Stripe promotion code
(a lookup by code, then a create with an idempotency key), render the email, send it
through SendGrid, mark it sent; every step a committed transaction (SQLite, WAL). The fakes
run in a separate process, so their cost does not share our GIL; their speed still bounds
ours. The figures:

- emails/s and rewards/s over the whole dispatch, next to the configured rate limits;
- time inside provider calls and inside SQL (summed over the worker threads);
- Prefect overhead: the flow's wall time (``dispatch_night`` in a flow, one task per batch)
  minus the time spent inside our own work (the batches' provider calls, SQL and rendering,
  and the recovery queries), which run one after the other; per batch task. With
  ``--mode both`` the same dispatch also runs without Prefect (``night.dispatch.dispatch_night``) on
  an identical database, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AS_OF = date(2026, 11, 20)
CAMPAIGN = "bench-discount"
CAMPAIGN_YAML = f"""
id: {CAMPAIGN}
name: Benchmark discount
priority: 50
audience:
  stage: [adopter, loyalist, advocate]
trigger: {{on: anniversary, of: joined_at, years: 1}}
reward:
  kind: discount
  percent_off: 10
  expires_in: 30d
  cost_estimate: "2.00 USD"
email:
  template: tenure_courtesy_discount
  subject: "Thank you, {{{{ member.first_name }}}}"
response:
  counts_as: [reward_redeemed, purchase]
  within: 30d
"""


def serve_fakes() -> None:
    """Child mode: serve both fakes, print their URLs, report counts when stdin closes."""
    from tests.fakes.sendgrid_api import FakeSendGrid
    from tests.fakes.stripe_api import StripeFake

    customers = int(sys.argv[2])
    stripe = StripeFake().start()
    for n in range(customers):
        stripe.add_customer(f"cus_bench{n:07d}")
    with FakeSendGrid() as sendgrid:
        print(json.dumps({"stripe": stripe.url, "sendgrid": sendgrid.url}), flush=True)
        sys.stdin.read()
        actions = {p["metadata"].get("action_id") for p in stripe.promotion_codes.values()}
        emails = [m.body["custom_args"]["action_id"] for m in sendgrid.messages]
        print(
            json.dumps(
                {
                    "promotion_codes": len(stripe.promotion_codes),
                    "distinct_actions": len(actions),
                    "emails": len(emails),
                    "distinct_emails": len(set(emails)),
                    "stripe_requests": len(stripe.requests),
                    "cpu_seconds": time.process_time(),
                }
            ),
            flush=True,
        )
    stripe.stop()


def prepare(workdir: Path, actions_count: int) -> str:
    """A SQLite database with N members (Stripe customers) and N planned actions."""
    import sqlalchemy as sa

    from store.engine import create_store_engine
    from store.migrate import upgrade
    from store.schema import actions, members

    path = workdir / "bench.db"
    url = f"sqlite:///{path}"
    engine = create_store_engine(url)
    upgrade(engine)
    now = datetime(2026, 11, 20)
    member_rows = [
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
        for n in range(actions_count)
    ]
    action_rows = [
        {
            "action_id": f"{n:032x}",
            "campaign_id": CAMPAIGN,
            "member_pk": n + 1,
            "occurrence": "2026",
            "as_of": AS_OF,
            "state": "planned",
            "holdout": False,
            "reward": {"kind": "discount", "percent_off": 10},
            "cost_minor": 200,
            "currency": "USD",
            "template": "tenure_courtesy_discount",
            "response_types": ["purchase"],
            "response_from": 0,
            "response_until": 0,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(actions_count)
    ]
    with engine.begin() as connection:
        for start in range(0, actions_count, 5000):
            connection.execute(sa.insert(members), member_rows[start : start + 5000])
            connection.execute(sa.insert(actions), action_rows[start : start + 5000])
    engine.dispose()
    return url


class Meter:
    """Seconds spent in SQL and in provider calls, summed over threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sql = 0.0
        self.provider = 0.0
        self.work = 0.0  # wall time inside Dispatcher.dispatch / recover / pending
        self._local = threading.local()

    def add(self, what: str, seconds: float) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + seconds)


def instrument(app: Any, meter: Meter) -> None:
    from sqlalchemy import event

    @event.listens_for(app.engine, "before_cursor_execute")
    def _before(*args: Any) -> None:
        meter._local.start = time.perf_counter()

    @event.listens_for(app.engine, "after_cursor_execute")
    def _after(*args: Any) -> None:
        meter.add("sql", time.perf_counter() - meter._local.start)

    def timed(function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                meter.add("provider", time.perf_counter() - started)

        return wrapper

    from night.dispatcher import Dispatcher

    for name in ("dispatch", "recover", "pending"):
        original = getattr(Dispatcher, name)

        def measured(self: Any, *args: Any, _original: Any = original) -> Any:
            started = time.perf_counter()
            try:
                return _original(self, *args)
            finally:
                meter.add("work", time.perf_counter() - started)

        setattr(Dispatcher, name, measured)

    api = app.issuer.providers["discount"].api
    api.call = timed(api.call)
    app.sender._post = timed(app.sender._post)


def run(mode: str, url: str, fakes: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    """Dispatch the prepared night in this process; return wall time and meters."""
    env = {
        "NUDGEFLOW_DATABASE_URL": url,
        "NUDGEFLOW_CAMPAIGNS_DIR": str(args.campaigns),
        "NUDGEFLOW_TEMPLATES_DIR": str(ROOT / "templates" / "email"),
        "NUDGEFLOW_REWARDS__PROVIDER": "stripe",
        "NUDGEFLOW_STRIPE__API_KEY": "sk_test_bench",
        "NUDGEFLOW_STRIPE__BASE_URL": fakes["stripe"],
        "NUDGEFLOW_STRIPE__MAX_REQUESTS_PER_SECOND": str(args.stripe_rate),
        "NUDGEFLOW_EMAIL__TRANSPORT": "sendgrid",
        "NUDGEFLOW_SENDGRID__API_KEY": "SG.fake-key",
        "NUDGEFLOW_SENDGRID__BASE_URL": fakes["sendgrid"],
        "NUDGEFLOW_SENDGRID__MAX_REQUESTS_PER_SECOND": str(args.sendgrid_rate),
        "NUDGEFLOW_DISPATCH__BATCH_SIZE": str(args.batch),
        "NUDGEFLOW_DISPATCH__MAX_WORKERS": str(args.workers),
    }
    os.environ.update(env)
    from bootstrap.app import build_app, process_app
    from night.dispatch import dispatch_night
    from night.lease import night_lease

    process_app.cache_clear()
    app = process_app() if mode == "prefect" else build_app()
    meter = Meter()
    instrument(app, meter)
    started = time.perf_counter()
    cpu_started = time.process_time()
    if mode == "plain":
        night = app.night(AS_OF)
        with night_lease(app.engine, AS_OF, app.clock):
            outcome = dispatch_night(app.dispatcher(night), night.batch_size)
        sent = outcome.result.total("sent")
    else:
        from prefect import flow

        from flows.nightly import dispatch_task_per_batch

        @flow(name="bench-dispatch")
        def bench(as_of: date) -> dict[str, Any]:
            return dispatch_task_per_batch(app, app.night(as_of))

        @flow(name="bench-warm-up")
        def warm_up() -> None:
            return None

        warm_up()  # starts the temporary Prefect server: not part of the overhead
        started = time.perf_counter()
        with night_lease(app.engine, AS_OF, app.clock):
            totals = bench(AS_OF)
        sent = totals.get("sent", 0)
    wall = time.perf_counter() - started
    app.issuer.close()
    app.engine.dispose()
    from night.dispatcher import Dispatcher

    for name in ("dispatch", "recover", "pending"):  # undo the timers for the next mode
        setattr(Dispatcher, name, getattr(Dispatcher, name).__kwdefaults__["_original"])
    return {
        "wall": wall,
        "sent": sent,
        "sql": meter.sql,
        "provider": meter.provider,
        "work": meter.work,
        "cpu": time.process_time() - cpu_started,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-fakes":
        serve_fakes()
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--stripe-rate", type=float, default=2000.0)
    parser.add_argument("--sendgrid-rate", type=float, default=2000.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--mode", choices=("both", "plain", "prefect"), default="both")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nudgeflow-bench-dispatch-"))
    args.campaigns = workdir / "campaigns"
    args.campaigns.mkdir()
    for name in ("lifecycle.yaml", "policy.yaml"):
        shutil.copy(ROOT / "campaigns" / name, args.campaigns / name)
    (args.campaigns / f"{CAMPAIGN}.yaml").write_text(CAMPAIGN_YAML)
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    from settings.prefect_env import prepare_prefect_environment

    prepare_prefect_environment()  # a patient start-up timeout for the temporary server
    modes = ("plain", "prefect") if args.mode == "both" else (args.mode,)
    print(f"actions: {args.actions}")
    print(f"stripe rate limit (requests/s): {args.stripe_rate:g}")
    print(f"sendgrid rate limit (requests/s): {args.sendgrid_rate:g}")
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        fakes_process = subprocess.Popen(
            [sys.executable, __file__, "--serve-fakes", str(args.actions)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert fakes_process.stdout is not None and fakes_process.stdin is not None
        fakes = json.loads(fakes_process.stdout.readline())
        (workdir / f"{mode}.db").parent.mkdir(exist_ok=True)
        mode_dir = workdir / mode
        mode_dir.mkdir()
        url = prepare(mode_dir, args.actions)
        result = run(mode, url, fakes, args)
        fakes_process.stdin.close()
        counts = json.loads(fakes_process.stdout.readline())
        fakes_process.wait()
        results[mode] = result
        wall = result["wall"]
        print(f"{mode} dispatch wall time (s): {wall:.1f}")
        print(f"{mode} emails/s: {result['sent'] / wall:.1f}")
        print(f"{mode} rewards/s: {counts['promotion_codes'] / wall:.1f}")
        print(f"{mode} time in provider calls, summed over threads (s): {result['provider']:.1f}")
        print(f"{mode} time in SQL, summed over threads (s): {result['sql']:.1f}")
        print(f"{mode} stripe requests: {counts['stripe_requests']}")
        print(f"{mode} CPU time of the fakes' process (s): {counts['cpu_seconds']:.1f}")
        print(f"{mode} CPU time of nudgeflow's process (s): {result['cpu']:.1f}")
        doubled = counts["emails"] - counts["distinct_emails"]
        extra = counts["promotion_codes"] - counts["distinct_actions"]
        print(f"{mode} duplicate emails: {doubled}")
        print(f"{mode} duplicate promotion codes: {extra}")
        print(f"{mode} time in dispatch work, one batch at a time (s): {result['work']:.1f}")
    if "prefect" in results:
        overhead = results["prefect"]["wall"] - results["prefect"]["work"]
        tasks = -(-args.actions // args.batch)
        print(f"prefect overhead: flow time minus our work (s): {overhead:.1f}")
        print(f"prefect overhead per batch task (ms): {1000 * overhead / tasks:.0f}")
    if "plain" in results and "prefect" in results:
        difference = results["prefect"]["wall"] - results["plain"]["wall"]
        print(f"prefect wall time minus plain wall time (s): {difference:.1f}")
    print(f"finished: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
