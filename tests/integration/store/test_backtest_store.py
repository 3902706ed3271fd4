"""``store.backtest.rewind_to`` on a scratch copy: the system tags go back to where their
history says they stood before the first simulated night (both databases)."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from store.backtest import rewind_to
from store.schema import member_tag_history, member_tags
from store.tags import CLEARED, TAGGED
from tests.integration.community import Person, insert_people

TAG = "nudge-fatigued"
D = date(2026, 3, 1)


def day(n: int) -> date:
    return D + timedelta(days=n)


def _setup(engine: sa.Engine) -> int:
    """One member rested on day 1 (until day 10), recovered on day 3, rested again on day 4
    (until day 13): the present row says day 4 to 13."""
    with engine.begin() as connection:
        pk = insert_people(connection, [Person("ann", None)])["ann"]
        history = [
            (TAGGED, day(1), day(10)),
            (CLEARED, day(3), None),
            (TAGGED, day(4), day(13)),
        ]
        connection.execute(
            sa.insert(member_tag_history),
            [
                {
                    "member_pk": pk,
                    "tag": TAG,
                    "source": "system",
                    "change": change,
                    "as_of": as_of,
                    "rest_until": until,
                    "reason": "test",
                }
                for change, as_of, until in history
            ],
        )
        connection.execute(
            sa.insert(member_tags),
            {
                "member_pk": pk,
                "tag": TAG,
                "source": "system",
                "added_on": day(4),
                "expires_on": day(13),
            },
        )
        connection.execute(
            sa.insert(member_tags), {"member_pk": pk, "tag": "staff", "source": "import"}
        )
    return pk


def _tags(engine: sa.Engine) -> list[tuple[str, str, date | None, date | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                member_tags.c.tag,
                member_tags.c.source,
                member_tags.c.added_on,
                member_tags.c.expires_on,
            ).order_by(member_tags.c.tag)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _rewound(engine: sa.Engine, start: date) -> list[tuple[str, str, date | None, date | None]]:
    with engine.begin() as connection:
        rewind_to(connection, start)
    return _tags(engine)


def test_a_rest_begun_after_the_start_goes_back_to_the_one_before(engine: sa.Engine) -> None:
    _setup(engine)
    # Before day 4 the first rest had been ended on day 3: it expired on day 2.
    assert _rewound(engine, day(4)) == [
        ("nudge-fatigued", "system", day(1), day(2)),
        ("staff", "import", None, None),
    ]
    # Before day 3 the first rest was running, to day 10.
    assert _rewound(engine, day(3)) == [
        ("nudge-fatigued", "system", day(1), day(10)),
        ("staff", "import", None, None),
    ]
    with engine.connect() as connection:
        kept = connection.execute(sa.select(member_tag_history.c.as_of)).scalars().all()
    assert kept == [day(1)]
    # Before day 1 there was no rest at all; imported tags are never touched.
    assert _rewound(engine, day(1)) == [("staff", "import", None, None)]
