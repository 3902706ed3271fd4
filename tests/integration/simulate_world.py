"""A small community whose backtest is known night by night (``nudgeflow simulate``).

Five adopters, each bought once 100 days before the first night. ``ann`` and ``bob`` (tag
``daily``) get the ``daily`` campaign: a nudge every night with a one-day window, at most 2
nudges in 7 days, rested after 2 unanswered nudges. ``cat``, ``dan`` and ``eve`` (tag
``gift``) get the ``gift`` campaign once: a 5.00 USD credit from a 10.00 USD monthly budget
(folder A) or a 15.00 USD one (folder B, which has no ``daily`` campaign). ``ann`` clicks
on the fourth day (N4). Nights ``N1`` (Friday 2026-05-08) to ``N5`` (Tuesday 2026-05-12): ISO
week 19 has N1–N3, week 20 N4–N5.

What folder A does (the integration and functional tests hold ``simulate`` to it):

- daily: N1 and N2 select both; N3 both are capped (2 nudges in 7 days), and both windows
  have closed unanswered, so both are tagged fatigued that night; on N4 and N5 bob rests,
  while ann's click during N4's day ends her rest that very night (recovery runs before
  the plan), and the cap holds her back instead.
- gift: N1 selects cat and dan (10.00 USD: the budget is spent), eve is refused for the
  budget; afterwards cat and dan have already received it and eve is still refused.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from audience.facts import EventFact
from nudgeflow.timeutil import day_end, day_start
from tests.integration.community import DAY, Person, add_events, insert_people

ROOT = Path(__file__).resolve().parents[2]
ZONE = ZoneInfo("UTC")
N1 = date(2026, 5, 8)
NIGHTS = [N1 + timedelta(days=n) for n in range(5)]
N2, N3, N4, N5 = NIGHTS[1:]
W19, W20 = "2026-W19", "2026-W20"

DAILY = """\
id: daily
name: Daily tip
priority: 20
audience: {stage: adopter, tags: {any_of: [daily]}}
trigger: {on: schedule}
eligibility: {cooldown: 1d}
email: {template: adopter_welcome, subject: A tip}
response: {counts_as: [email_clicked], within: 1d}
"""


def gift(per_month: str) -> str:
    return f"""\
id: gift
name: A small credit
priority: 10
audience: {{stage: adopter, tags: {{any_of: [gift]}}}}
trigger: {{on: schedule}}
eligibility: {{once_per_member: true}}
reward: {{kind: credit, amount: "5.00 USD", expires_in: 90d}}
budget: {{per_month: "{per_month}"}}
email: {{template: adopter_welcome, subject: A gift}}
response: {{counts_as: [email_clicked], within: 1d}}
"""


POLICY = """\
frequency_caps:
  - {max: 2, per: 7d}
fatigue: {unanswered_nudges: 2, rest_for: 10d}
"""


def write_folders(base: Path) -> tuple[Path, Path]:
    """Campaign folders A (daily, gift at 10.00 USD a month) and B (gift at 15.00 USD)."""
    a, b = base / "campaigns-a", base / "campaigns-b"
    for folder in (a, b):
        folder.mkdir(parents=True)
        shutil.copy(ROOT / "campaigns/lifecycle.yaml", folder / "lifecycle.yaml")
        (folder / "policy.yaml").write_text(POLICY)
    (a / "daily.yaml").write_text(DAILY)
    (a / "gift.yaml").write_text(gift("10.00 USD"))
    (b / "gift.yaml").write_text(gift("15.00 USD"))
    return a, b


def populate(connection: sa.Connection) -> dict[str, int]:
    """The five members, their purchase and ann's click; member_id → key."""
    bought = day_end(N1, ZONE) - 100 * DAY
    people = [
        Person(name, None, [EventFact("purchase", bought, 1000, "USD")], frozenset({tag}))
        for name, tag in [
            ("ann", "daily"),
            ("bob", "daily"),
            ("cat", "gift"),
            ("dan", "gift"),
            ("eve", "gift"),
        ]
    ]
    keys = insert_people(connection, people)
    add_events(connection, keys, [("ann", EventFact("email_clicked", day_start(N4, ZONE) + 3600))])
    return keys


# What folder A does per campaign and ISO week (zero exclusions left out).
EXPECTED_A = {
    ("daily", W19): {"selected": 4, "excluded": {"frequency_cap": 2}, "fatigue_tags": 2},
    ("daily", W20): {
        "selected": 0,
        "excluded": {"fatigued": 2, "frequency_cap": 2},
        "fatigue_tags": 0,
    },
    ("daily", "total"): {
        "selected": 4,
        "excluded": {"fatigued": 2, "frequency_cap": 4},
        "fatigue_tags": 2,
    },
    ("gift", W19): {
        "selected": 2,
        "excluded": {"already_received": 4, "budget": 3},
        "fatigue_tags": 0,
    },
    ("gift", W20): {
        "selected": 0,
        "excluded": {"already_received": 4, "budget": 2},
        "fatigue_tags": 0,
    },
    ("gift", "total"): {
        "selected": 2,
        "excluded": {"already_received": 8, "budget": 5},
        "fatigue_tags": 0,
    },
}


def database_fingerprint(engine: sa.Engine) -> str:
    """A digest of the whole database: on SQLite the file's bytes (every connection closed
    first, so the write-ahead log is folded in and gone), on PostgreSQL every row of every
    table of the schema, in a stable order."""
    engine.dispose()
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        leftovers = sorted(p.name for p in path.parent.glob(path.name + "-*"))
        return hashlib.sha256(path.read_bytes()).hexdigest() + repr(leftovers)
    digest = hashlib.sha256()
    with engine.connect() as connection:
        tables = connection.execute(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "ORDER BY tablename"
            )
        ).scalars()
        for table in list(tables):
            rows = connection.execute(
                sa.text(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, chr(10) "
                    f"ORDER BY t::text), '')) FROM \"{table}\" t"
                )
            ).one()
            digest.update(f"{table}:{rows[0]}:{rows[1]};".encode())
    engine.dispose()
    return digest.hexdigest()
