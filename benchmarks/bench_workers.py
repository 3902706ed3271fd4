"""Dispatching a night on PostgreSQL with one and with two worker processes.

    python benchmarks/bench_workers.py --database-url postgresql+psycopg://… [--actions 5000]
        [--threads 8] [--batch 200] [--stripe-rate 100000] [--sendgrid-rate 100000]

The night of ``bench_dispatch`` (every action a discount: reserve, a Stripe promotion code,
render, send through SendGrid, mark sent) is prepared twice in schemas of its own on the
same PostgreSQL server, and dispatched:

- **1 process**: the run's own loop (``night.dispatch.dispatch_night``), what a night does
  with ``--workers 1``, the baseline;
- **2 processes**: the run (``night.workers.dispatch_shared``) and one worker that joined it
  (``night.workers.join_run``), sharing the batches through claims, what ``nudgeflow run
  --workers 2`` does.

The fakes run in another process (``bench_dispatch.py --serve-fakes``), and its CPU time is
reported: on a machine with few cores the fakes and PostgreSQL compete with the workers.
The rate limits are set high so that the processes, not the limits, bound the dispatch
(they are kept in the database's shared bucket all the same). The figures: the wall time
of each dispatch, its actions/s, the speed-up of two processes over one, the CPU time of
nudgeflow's processes and of the fakes, and duplicate emails or codes (always 0). The
PostgreSQL server's CPU is not measured (it may serve others, or run elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_dispatch import AS_OF, CAMPAIGN, CAMPAIGN_YAML  # noqa: E402


def schema_url(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def prepare(url: str, actions_count: int) -> None:
    """N members (Stripe customers) and N planned actions, as ``bench_dispatch`` has them."""
    import sqlalchemy as sa

    from store.engine import create_store_engine
    from store.migrate import upgrade
    from store.schema import actions, members

    engine = create_store_engine(url)
    upgrade(engine)
    now = datetime(2026, 11, 20)
    with engine.begin() as connection:
        for start in range(0, actions_count, 5000):
            numbers = range(start, min(actions_count, start + 5000))
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
                    for n in numbers
                ],
            )
            connection.execute(
                sa.insert(actions),
                [
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
                    for n in numbers
                ],
            )
    engine.dispose()


def settings_env(url: str, fakes: dict[str, str], args: argparse.Namespace) -> dict[str, str]:
    return {
        "NUDGEFLOW_DATABASE_URL": url,
        "NUDGEFLOW_CAMPAIGNS_DIR": str(args.campaigns),
        "NUDGEFLOW_TEMPLATES_DIR": str(ROOT / "templates" / "email"),
        "NUDGEFLOW_TIMEZONE": "Europe/Paris",
        "NUDGEFLOW_SIGNING_KEY": "bench-workers-key",
        "NUDGEFLOW_REWARDS__PROVIDER": "stripe",
        "NUDGEFLOW_STRIPE__API_KEY": "sk_test_bench",
        "NUDGEFLOW_STRIPE__BASE_URL": fakes["stripe"],
        "NUDGEFLOW_STRIPE__MAX_REQUESTS_PER_SECOND": str(args.stripe_rate),
        "NUDGEFLOW_EMAIL__TRANSPORT": "sendgrid",
        "NUDGEFLOW_SENDGRID__API_KEY": "SG.fake-key",
        "NUDGEFLOW_SENDGRID__BASE_URL": fakes["sendgrid"],
        "NUDGEFLOW_SENDGRID__MAX_REQUESTS_PER_SECOND": str(args.sendgrid_rate),
        "NUDGEFLOW_DISPATCH__BATCH_SIZE": str(args.batch),
        "NUDGEFLOW_DISPATCH__MAX_WORKERS": str(args.threads),
    }


# -- the child processes ---------------------------------------------------------------------


def child(role: str) -> None:
    """``--run-alone``, ``--run-shared`` or ``--work``: one process of a dispatch; prints
    ``ready`` once built, then a JSON line of what it did."""
    from bootstrap.app import build_app
    from night.dispatch import dispatch_night
    from night.lease import night_lease
    from night.runs import close_run, open_run
    from night.workers import ClaimTerms, dispatch_shared, find_run, join_run

    app = build_app()
    night = app.night(AS_OF)
    dispatcher = app.dispatcher(night)
    terms = ClaimTerms(ttl_seconds=60, heartbeat_seconds=15, poll_seconds=0.05)
    _ = app.issuer, app.sender
    print("ready", flush=True)
    cpu, started = time.process_time(), time.perf_counter()
    if role == "--work":
        run_id = find_run(app.engine, AS_OF, wait_seconds=120, poll_seconds=0.02)
        assert run_id is not None
        batches = join_run(dispatcher, run_id, terms=terms).batches
        sent = 0
    else:
        with night_lease(app.engine, AS_OF, app.clock):
            opened = open_run(app.engine, AS_OF, "nightly", None, app.clock)
            started = time.perf_counter()
            if role == "--run-alone":
                outcome = dispatch_night(dispatcher, night.batch_size)
            else:
                outcome = dispatch_shared(dispatcher, opened.run_id, night.batch_size, terms=terms)
            wall = time.perf_counter() - started
            close_run(app.engine, opened.run_id, "completed", app.clock)
        batches, sent = outcome.batches, outcome.result.total("sent")
    result = {"cpu": time.process_time() - cpu, "batches": batches, "sent": sent}
    if role != "--work":
        result["wall"] = wall
    app.issuer.close()
    app.engine.dispose()
    print(json.dumps(result), flush=True)


def start_child(role: str, env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, __file__, role],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        raise SystemExit(f"{role} did not start: {line}")
    return process


def finish_child(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=3600)
    if process.returncode != 0:
        raise SystemExit(f"a dispatch process failed ({process.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def measure(processes: int, url: str, schema: str, args: argparse.Namespace) -> dict[str, float]:
    import sqlalchemy as sa

    from store.engine import create_store_engine

    admin = create_store_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        mine = schema_url(url, schema)
        prepare(mine, args.actions)
        fakes_process = subprocess.Popen(
            [sys.executable, str(HERE / "bench_dispatch.py"), "--serve-fakes", str(args.actions)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert fakes_process.stdout is not None and fakes_process.stdin is not None
        fakes = json.loads(fakes_process.stdout.readline())
        env = settings_env(mine, fakes, args)
        workers = [start_child("--work", env) for _ in range(processes - 1)]
        run = start_child("--run-alone" if processes == 1 else "--run-shared", env)
        ran = finish_child(run)
        worked = [finish_child(worker) for worker in workers]
        fakes_process.stdin.close()
        counts = json.loads(fakes_process.stdout.readline())
        fakes_process.wait()
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return {
        "wall": ran["wall"],
        "sent": ran["sent"],
        "cpu": ran["cpu"] + sum(w["cpu"] for w in worked),
        "worker_batches": sum(w["batches"] for w in worked),
        "fakes_cpu": counts["cpu_seconds"],
        "duplicate_emails": counts["emails"] - counts["distinct_emails"],
        "duplicate_codes": counts["promotion_codes"] - counts["distinct_actions"],
        "emails": counts["emails"],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("--run-alone", "--run-shared", "--work"):
        child(sys.argv[1])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("NUDGEFLOW_BENCH_POSTGRES_URL"),
        help="a PostgreSQL database to create schemas in (NUDGEFLOW_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--actions", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--stripe-rate", type=float, default=100_000.0)
    parser.add_argument("--sendgrid-rate", type=float, default=100_000.0)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if not args.database_url or not args.database_url.startswith("postgresql"):
        raise SystemExit("bench_workers.py needs --database-url postgresql+psycopg://…")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nudgeflow-bench-workers-"))
    args.campaigns = workdir / "campaigns"
    args.campaigns.mkdir(parents=True, exist_ok=True)
    for name in ("lifecycle.yaml", "policy.yaml"):
        shutil.copy(ROOT / "campaigns" / name, args.campaigns / name)
    (args.campaigns / f"{CAMPAIGN}.yaml").write_text(CAMPAIGN_YAML)
    print(f"actions: {args.actions}")
    print(f"threads per process: {args.threads}")
    print(f"cores on this machine: {os.cpu_count()}")
    results: dict[int, dict[str, float]] = {}
    for processes in (1, 2):
        schema = f"bench_workers_{processes}_{uuid.uuid4().hex[:8]}"
        result = measure(processes, args.database_url, schema, args)
        results[processes] = result
        label = f"{processes} process" + ("es" if processes > 1 else "")
        print(f"{label}: dispatch wall time (s): {result['wall']:.1f}")
        print(f"{label}: actions/s: {result['sent'] / result['wall']:.1f}")
        print(f"{label}: CPU time of nudgeflow's processes (s): {result['cpu']:.1f}")
        print(f"{label}: CPU time of the fakes' process (s): {result['fakes_cpu']:.1f}")
        if processes > 1:
            print(f"{label}: batches worked by the joined worker: {result['worker_batches']:.0f}")
        print(f"{label}: emails sent: {result['emails']:.0f}")
        print(f"{label}: duplicate emails: {result['duplicate_emails']:.0f}")
        print(f"{label}: duplicate promotion codes: {result['duplicate_codes']:.0f}")
    speedup = results[1]["wall"] / results[2]["wall"]
    print(f"2 processes vs 1, speed-up (x): {speedup:.2f}")
    # For benchmarks/run.py, one figure a line:
    print(f"one_process_actions_per_second: {results[1]['sent'] / results[1]['wall']:.1f}")
    print(f"two_processes_actions_per_second: {results[2]['sent'] / results[2]['wall']:.1f}")
    print(f"two_processes_speedup: {speedup:.3f}")
    print(f"two_processes_fakes_cpu_seconds: {results[2]['fakes_cpu']:.1f}")
    duplicates = sum(r["duplicate_emails"] + r["duplicate_codes"] for r in results.values())
    print(f"duplicates: {duplicates:.0f}")
    print(f"finished: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
