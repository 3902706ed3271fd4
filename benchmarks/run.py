"""``make bench``: every benchmark in its own process, each figure next to its limit.

    python benchmarks/run.py --size 100000
    python benchmarks/run.py --size 100000 --db postgres [--postgres-url URL]

``--size`` is the number of members (events are ~10 per member). The limits in the issues
are for 1 M members and 10 M events; at other sizes they are scaled linearly, which is
generous for small sizes (fixed costs dominate) and is only a guide. Ratios to a bare
baseline measured in the same run are the figures that mean most on a shared machine.
Peak RSS is measured per benchmark process (``wait4``).

``--db postgres`` (``make bench DB=postgres``) runs the import and the planning benchmarks on
PostgreSQL, each in a database of its own created on the server ``--postgres-url`` names
(default: the local server, or ``NUDGEFLOW_BENCH_POSTGRES_URL``) and dropped after: the
import next to psql's bare ``\\copy`` of the same file, the refresh and plan of a night next
to one bare aggregate pass over ``events``, the planning process's peak RSS, and a night's
dispatch by one and by two worker processes against the fakes (``bench_workers.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from postgres_bench import DEFAULT_URL, bench_database

HERE = Path(__file__).resolve().parent
FULL_MEMBERS = 1_000_000
GIB = 1024.0


def _run(script: str, *args: str) -> tuple[dict[str, float], float]:
    """Run one benchmark script; return the figures it printed and its peak RSS in MiB."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.stdout.write(output)
        raise SystemExit(f"{script} failed")
    figures: dict[str, float] = {}
    for line in output.splitlines():
        name, _, value = line.partition(":")
        try:
            figures[name.strip()] = float(value.replace(",", ""))
        except ValueError:
            continue
    return figures, usage.ru_maxrss / 1024


def _row(name: str, figure: str, limit: str, verdict: bool | None) -> None:
    mark = "" if verdict is None else ("ok" if verdict else "OVER")
    print(f"{name:<38} {figure:>18} {limit:>22}  {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="members (≈10 events each)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("NUDGEFLOW_BENCH_POSTGRES_URL"),
        help="a PostgreSQL server for the PostgreSQL benchmarks (databases are created on it)",
    )
    args = parser.parse_args()
    if args.db == "postgres":
        _postgres(args.size, args.postgres_url)
        return
    scale = args.size / FULL_MEMBERS
    results: dict[str, tuple[dict[str, float], float]] = {}
    with tempfile.TemporaryDirectory(prefix="nudgeflow_bench_") as tmp:
        for name, script, extra in (
            ("import", "bench_import.py", ["--events", str(args.size * 10)]),
            ("refresh", "bench_refresh.py", ["--members", str(args.size)]),
            ("plan", "bench_plan.py", ["--members", str(args.size)]),
            ("fatigue", "bench_fatigue.py", ["--members", str(args.size)]),
            ("render", "bench_render.py", []),
            ("webhooks", "bench_webhooks.py", ["--duration", "10"]),
            ("inbox", "bench_inbox.py", ["--rows", "20000", "--repeat", "1"]),
            ("sends", "bench_sends.py", ["--emails", "4000", "--rewards", "500"]),
        ):
            if not (HERE / script).exists():
                continue
            if name == "webhooks" and shutil.which("wrk") is None:
                print("skipping bench_webhooks.py: needs wrk (apt-get install wrk)", flush=True)
                continue
            print(f"running {script} …", flush=True)
            workdir = Path(tmp) / name
            results[name] = _run(script, *extra, "--workdir", str(workdir))

    print()
    print(f"size: {args.size:,} members; limits scaled from 1 M members / 10 M events x{scale:g}")
    _row("figure", "measured", "limit", None)
    if "import" in results:
        f, rss = results["import"]
        limit = 120 * scale
        _row(
            f"import {f['events']:,.0f} events (s)",
            f"{f['import_seconds']:.1f}",
            f"≤ {limit:.1f}",
            f["import_seconds"] <= limit,
        )
        _row(
            "  events/s",
            f"{f['events_per_second']:,.0f}",
            f"≥ {10_000_000 / 120:,.0f}",
            f["events_per_second"] >= 10_000_000 / 120,
        )
        _row("  vs bare executemany (ratio)", f"{f['ratio']:.2f}", "", None)
        _row("  peak RSS (MiB)", f"{rss:.0f}", f"≤ {GIB:.0f}", rss <= GIB)
    if "refresh" in results:
        f, rss = results["refresh"]
        limit = 30 * scale
        _row(
            f"refresh {f['members']:,.0f} members (s)",
            f"{f['refresh_seconds']:.1f}",
            f"≤ {limit:.1f}",
            f["refresh_seconds"] <= limit,
        )
        _row("  vs bare aggregate + NTILE (ratio)", f"{f['refresh_over_floor']:.2f}", "", None)
        _row("  peak RSS (MiB)", f"{rss:.0f}", f"≤ {GIB:.0f}", rss <= GIB)
    if "plan" in results:
        f, rss = results["plan"]
        limit = 30 * scale
        seconds = f.get("plan_seconds", float("nan"))
        _row("plan 20 campaigns (s)", f"{seconds:.1f}", f"≤ {limit:.1f}", seconds <= limit)
        _row("  peak RSS (MiB)", f"{rss:.0f}", f"≤ {GIB:.0f}", rss <= GIB)
    if "fatigue" in results:
        f, rss = results["fatigue"]
        _row(
            f"fatigue, {f['actions']:,.0f} nudges (s)",
            f"{f['fatigue_seconds']:.1f}",
            "",
            None,
        )
        _row("  recover before the plan (s)", f"{f['recover_seconds']:.2f}", "", None)
        _row("  tag after dispatch (s)", f"{f['tag_seconds']:.2f}", "", None)
    if "render" in results:
        f, rss = results["render"]
        rate = f.get("emails_per_second", float("nan"))
        _row("render emails/s (one core)", f"{rate:,.0f}", "≥ 5,000", rate >= 5_000)
    if "webhooks" in results:
        f, rss = results["webhooks"]
        rate = f["batch_events_per_second"]
        _row("webhook events/s, batches of 100", f"{rate:,.0f}", "≥ 1,000", rate >= 1_000)
        ratio = f["single_over_bare"]
        _row("  single events vs bare handler", f"{ratio:.2f}", "≥ 0.50", ratio >= 0.5)
        clean = f["events_recorded"] == f["distinct_events_sent"] and f["not_done"] == 0
        _row("  inbox: nothing lost or doubled", "yes" if clean else "NO", "", clean)
    if "inbox" in results:
        f, rss = results["inbox"]
        _row(
            "inbox worker, CPU µs per event",
            f"{f['work_cpu_us_per_row']:.1f}",
            "",
            None,
        )
        _row("  vs bare executemany (ratio)", f"{f['work_over_bare']:.2f}", "", None)
    if "sends" in results:
        f, rss = results["sends"]
        ratio = f["email_dispatch_over_client"]
        _row("email-only dispatch vs sendgrid client", f"{ratio:.2f}", "≥ 0.80", ratio >= 0.8)
        per = f["reward_requests_per_reward"]
        _row("  Stripe requests per reward (first)", f"{per:.3f}", "= 1.000", per == 1.0)
        _row(
            "  rewards per Stripe request, all", f"{f['rewards_per_stripe_request']:.3f}", "", None
        )
        held = f["stripe_rate_over_configured"]
        _row("  achieved Stripe rate vs configured", f"{held:.2f}", "≥ 0.95", held >= 0.95)
    print(json.dumps({k: v[0] | {"peak_rss_mib": v[1]} for k, v in results.items()}))


def _postgres(size: int, url: str | None) -> None:
    """``--db postgres``: the import and the plan on PostgreSQL, each next to its baseline."""
    scale = size / FULL_MEMBERS
    server = ["--db", "postgres"] + (["--postgres-url", url] if url else [])
    results: dict[str, tuple[dict[str, float], float]] = {}
    with tempfile.TemporaryDirectory(prefix="nudgeflow_bench_") as tmp:
        for name, script, extra in (
            ("import", "bench_import.py", ["--events", str(size * 10)]),
            ("plan", "bench_plan.py", ["--members", str(size)]),
        ):
            print(f"running {script} on PostgreSQL …", flush=True)
            workdir = Path(tmp) / name
            results[name] = _run(script, *extra, *server, "--workdir", str(workdir))
        print("running bench_workers.py on PostgreSQL …", flush=True)
        with bench_database(url or DEFAULT_URL) as database:
            actions = str(max(size // 100, 200))
            results["workers"] = _run(
                "bench_workers.py", "--database-url", database, "--actions", actions
            )
    print()
    print(f"PostgreSQL, size: {size:,} members; limits scaled from 1 M members x{scale:g}")
    _row("figure", "measured", "limit", None)
    f, rss = results["import"]
    limit = 120 * scale
    _row(
        f"import {f['events']:,.0f} events (s)",
        f"{f['import_seconds']:.1f}",
        f"≤ {limit:.1f}",
        f["import_seconds"] <= limit,
    )
    _row("  bare psql \\copy of the file (s)", f"{f['bare_copy_seconds']:.2f}", "", None)
    _row("  import / bare \\copy", f"{f['ratio']:.1f}", "≤ 3.0", f["ratio"] <= 3.0)
    _row("  import again, all unchanged (s)", f"{f['reimport_seconds']:.1f}", "", None)
    _row("  peak RSS (MiB)", f"{rss:.0f}", f"≤ {GIB:.0f}", rss <= GIB)
    f, rss = results["plan"]
    work = f["refresh_tonight_seconds"] + f["plan_seconds"]
    _row(
        "refresh + plan 20 campaigns (s)",
        f"{work:.1f}",
        f"≤ {60 * scale:.1f}",
        work <= 60 * scale,
    )
    _row("  one bare aggregate pass (s)", f"{f['floor_seconds']:.2f}", "", None)
    _row("  refresh + plan / bare pass", f"{f['refresh_plan_over_floor']:.1f}", "", None)
    _row("  plan peak RSS (MiB)", f"{rss:.0f}", f"≤ {GIB:.0f}", rss <= GIB)
    f, _ = results["workers"]
    _row(
        "dispatch, 1 process (actions/s)",
        f"{f['one_process_actions_per_second']:,.1f}",
        "",
        None,
    )
    _row("  with 2 worker processes", f"{f['two_processes_actions_per_second']:,.1f}", "", None)
    speedup = f["two_processes_speedup"]
    _row("  2 processes vs 1 (x)", f"{speedup:.2f}", "≥ 1.70", speedup >= 1.7)
    _row(
        "  CPU of the fakes' process (s)",
        f"{f['two_processes_fakes_cpu_seconds']:.1f}",
        "",
        None,
    )
    _row("  duplicate emails or codes", f"{f['duplicates']:.0f}", "0", f["duplicates"] == 0)
    print(json.dumps({k: v[0] | {"peak_rss_mib": v[1]} for k, v in results.items()}))


if __name__ == "__main__":
    main()
