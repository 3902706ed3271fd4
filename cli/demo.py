"""``nudgeflow demo-data``: write a plausible sample community as importable CSV files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cli.context import console
from cli.options import date_option
from demo.demodata import MAX_DAYS, generate
from nudgeflow.errors import NudgeflowError
from nudgeflow.timeutil import system_clock

# Arguments are checked here rather than with typer's min=/max=: a NudgeflowError becomes a
# one-line message and exit code 2 in cli.main, whatever click flavour typer ships.


def demo_data(
    members: int = typer.Option(
        1000, "--members", metavar="N", help="How many members (at least 1)."
    ),
    days: int = typer.Option(
        365, "--days", metavar="N", help=f"Days of history ending with --end (1 to {MAX_DAYS})."
    ),
    seed: int = typer.Option(
        1, "--seed", metavar="N", help="Random seed: same arguments, same files."
    ),
    end: Annotated[
        date | None,
        date_option(
            "--end",
            "Last day of history (UTC); nothing happens after it. Defaults to today's UTC "
            "date, so pass it explicitly for byte-identical files on another day.",
        ),
    ] = None,
    out: Path = typer.Option(
        Path("var/demo"),
        "--out",
        metavar="DIR",
        file_okay=False,
        help="Directory for members.csv and events.csv (created if missing; files replaced).",
    ),
) -> None:
    """Generate members.csv and events.csv for a sample community.

    Members follow personas (one-time, repeat and loyal buyers, community regulars,
    advocates, lapsed customers, window shoppers), so every lifecycle stage has members.
    Same --members, --days, --seed and --end: byte-identical files.
    """
    if members < 1:
        raise NudgeflowError(f"--members: expected at least 1, got {members}")
    if not 1 <= days <= MAX_DAYS:
        raise NudgeflowError(f"--days: expected 1 to {MAX_DAYS}, got {days}")
    last_day = end if end is not None else system_clock().date()
    try:
        member_count, event_count = generate(out, members, days, seed, last_day)
    except OSError as exc:
        where = exc.filename or out
        raise NudgeflowError(f"--out: cannot write {where}: {exc.strerror or exc}") from None
    console.print(
        f"wrote {member_count} members and {event_count} events to {out} "
        f"(seed {seed}, {days} days ending {last_day.isoformat()})",
        markup=False,
        soft_wrap=True,
    )
