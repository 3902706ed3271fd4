"""Backtesting the shipped campaigns over the demo community: ``nudgeflow simulate``.

    python benchmarks/bench_simulate.py [--members 2000] [--days 730] [--seed 7]
        [--nights 30] [--database-url URL] [--workdir DIR]

Writes the demo community (``nudgeflow demo-data``, history ending on ``--end``), imports it
into a fresh database (SQLite in the work folder, or ``--database-url``, which must point at
an empty database), then times, through the console script as a user runs them:

- ``simulate``: ``nudgeflow simulate`` over the last ``--nights`` nights of the history
  (the figure with a limit: under 2 minutes for 30 nights of 2,000 members);
- ``plan``: ``nudgeflow plan`` of the last night, the bare baseline: one night's refresh and
  plan rehearsed in a transaction that is rolled back, plus the process's start;

and prints both, the seconds per simulated night and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script() -> str:
    beside = Path(sys.executable).parent / "nudgeflow"
    return str(beside) if beside.exists() else (shutil.which("nudgeflow") or "nudgeflow")


def _run(env: dict[str, str], cwd: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([_script(), *args], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 29))
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nudgeflow_bench_simulate_"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{workdir / 'nudgeflow.db'}"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    env = inherited | {
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "NUDGEFLOW_DATABASE_URL": url,
        "NUDGEFLOW_CAMPAIGNS_DIR": str(ROOT / "campaigns"),
        "NUDGEFLOW_TEMPLATES_DIR": str(ROOT / "templates" / "email"),
        "NUDGEFLOW_TIMEZONE": "UTC",
        "NUDGEFLOW_SIGNING_KEY": "bench-simulate",
        "NUDGEFLOW_EMAIL__OUTBOX_DIR": str(workdir / "outbox"),
        "PREFECT_HOME": str(workdir / "prefect"),
    }
    demo = workdir / "demo"
    _run(
        env,
        workdir,
        "demo-data",
        "--members",
        str(args.members),
        "--days",
        str(args.days),
        "--seed",
        str(args.seed),
        "--end",
        args.end.isoformat(),
        "--out",
        str(demo),
    )
    imported = _run(env, workdir, "members", "import", str(demo / "members.csv"))
    imported += _run(env, workdir, "events", "import", str(demo / "events.csv"))
    last = args.end
    first = last - timedelta(days=args.nights - 1)
    baseline = _run(env, workdir, "plan", "--as-of", last.isoformat())
    simulated = _run(
        env, workdir, "simulate", "--from", first.isoformat(), "--to", last.isoformat()
    )
    print(f"database: {url.split(':', 1)[0]}")
    print(f"members: {args.members}")
    print(f"nights: {args.nights}")
    print(f"import seconds: {imported:.1f}")
    print(f"plan (one night, baseline) seconds: {baseline:.2f}")
    print(f"simulate seconds: {simulated:.1f}")
    print(f"simulate seconds per night: {simulated / args.nights:.2f}")
    print(f"simulate per night / plan: {simulated / args.nights / baseline:.2f}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
