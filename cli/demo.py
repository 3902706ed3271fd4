"""``nudgeflow demo-data``: write a plausible sample community as importable CSV files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from cli.context import console
from demo.demodata import MAX_DAYS, generate
from nudgeflow.errors import NudgeflowError
from nudgeflow.timeutil import system_clock

# Arguments are checked here rather than with typer's min=/max=: a NudgeflowError becomes a
# one-line message and exit code 2 in cli.main, whatever click flavour typer ships.


def _parse_end(text: str | None) -> date:
    if text is None:
        return system_clock().date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise NudgeflowError(f"--end: expected a date as YYYY-MM-DD, got {text!r}") from None


def demo_data(
    members: int = typer.Option(1000, "--members", help="How many members (at least 1)."),
    days: int = typer.Option(
        365, "--days", help=f"Days of history ending with --end (1 to {MAX_DAYS})."
    ),
    seed: int = typer.Option(1, "--seed", help="Random seed: same arguments, same files."),
    end: str | None = typer.Option(
        None,
        "--end",
        metavar="YYYY-MM-DD",
        help="Last day of history (UTC); nothing happens after it. Defaults to today's UTC "
        "date, so pass it explicitly for byte-identical files on another day.",
    ),
    out: Path = typer.Option(
        Path("var/demo"),
        "--out",
        file_okay=False,
        help="Directory for members.csv and events.csv (created if missing; files replaced).",
    ),
) -> None:
    """Generate members.csv and events.csv for a sample community.

    Members follow personas (one-time, repeat and loyal buyers, community
    regulars, advocates, lapsed customers, window shoppers), so every
    lifecycle stage has members. Same --members, --days, --seed and --end:
    byte-identical files.
    """
    if members < 1:
        raise NudgeflowError(f"--members: expected at least 1, got {members}")
    if not 1 <= days <= MAX_DAYS:
        raise NudgeflowError(f"--days: expected 1 to {MAX_DAYS}, got {days}")
    last_day = _parse_end(end)
    member_count, event_count = generate(out, members, days, seed, last_day)
    console.print(
        f"wrote {member_count} members and {event_count} events to {out} "
        f"(seed {seed}, {days} days ending {last_day.isoformat()})",
        markup=False,
        soft_wrap=True,
    )
