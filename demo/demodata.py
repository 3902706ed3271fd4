"""Demo data: a plausible community of members and their events, written as CSV.

``generate(out_dir, members, days, seed, end)`` writes ``members.csv`` and ``events.csv`` in
the formats the importer reads, covering the ``days`` days ending at ``end`` (UTC). Who the
members are and how they behave is in ``demo.personas``, ``demo.population`` and
``demo.community``.

Determinism and memory: a member's row and events depend only on (seed, index, days, end),
and rows are written member by member. Output is byte-identical for the same arguments and
memory does not grow with ``members``. Files are written under temporary names and renamed at
the end, so an interrupted run never leaves a half-written pair behind.
"""

from __future__ import annotations

import csv
import os
from datetime import date
from pathlib import Path

from demo.community import DAY, Community
from store.rows import MEMBER_COLUMNS as IMPORT_MEMBER_COLUMNS

MAX_DAYS = 36_500

# Plus custom attributes: the plan, and a postal address for gift rewards.
MEMBER_COLUMNS = (*IMPORT_MEMBER_COLUMNS, "plan", "address_line1", "city", "postal_code")
EVENT_COLUMNS = ("event_id", "member_id", "type", "occurred_at", "amount", "currency", "properties")


def generate(out_dir: Path, members: int, days: int, seed: int, end: date) -> tuple[int, int]:
    """Write ``members.csv`` and ``events.csv`` into ``out_dir``; return (members, events).

    Events cover the ``days`` days ending with ``end`` (UTC): nothing happens at or after
    midnight UTC starting the day after ``end``. The same arguments give the same bytes.
    """
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    community = Community(days, end)
    base, prefix, suffix = community.base, community.day_prefix, community.time_suffix
    out_dir.mkdir(parents=True, exist_ok=True)
    members_path, events_path = out_dir / "members.csv", out_dir / "events.csv"
    members_tmp = members_path.with_name(members_path.name + ".part")
    events_tmp = events_path.with_name(events_path.name + ".part")
    event_count = 0
    try:
        with (
            members_tmp.open("w", encoding="utf-8", newline="", buffering=1 << 20) as mf,
            events_tmp.open("w", encoding="utf-8", newline="", buffering=1 << 20) as ef,
        ):
            member_writer = csv.writer(mf, lineterminator="\n")
            event_writer = csv.writer(ef, lineterminator="\n")
            member_writer.writerow(MEMBER_COLUMNS)
            event_writer.writerow(EVENT_COLUMNS)
            for index in range(1, members + 1):
                row, events = community.member(index, seed)
                member_writer.writerow(row)
                # Sorting a member's handful of events makes ids follow time within a member.
                events.sort()
                member_id = row[0]
                id_prefix = f"e{index}-"
                rows = []
                for n, (instant, kind, amount, currency, props) in enumerate(events):
                    day, second = divmod(instant - base, DAY)
                    rows.append(
                        (
                            f"{id_prefix}{n}",
                            member_id,
                            kind,
                            prefix[day] + suffix[second],
                            amount,
                            currency,
                            props,
                        )
                    )
                event_writer.writerows(rows)
                event_count += len(rows)
        os.replace(members_tmp, members_path)
        os.replace(events_tmp, events_path)
    finally:
        members_tmp.unlink(missing_ok=True)
        events_tmp.unlink(missing_ok=True)
    return members, event_count
