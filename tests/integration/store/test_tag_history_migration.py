"""Migration 0007 starts the tag history with the fatigue rests already recorded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from store.engine import create_store_engine
from store.migrate import _config, upgrade
from store.tags import TAGGED, tag_changes


def test_upgrading_records_the_existing_rests_as_the_start_of_the_history(
    tmp_path: Path,
) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(_config(engine), "0006")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO members (id, member_id, email, email_opt_in, row_hash, created_at, "
                "updated_at) VALUES (1, 'm1', 'm1@example.com', 1, '-', '2026-01-01', "
                "'2026-01-01')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO member_tags (member_pk, tag, source, added_on, expires_on) VALUES "
                "(1, 'nudge-fatigued', 'system', '2026-03-01', '2026-05-29'), "
                "(1, 'vip', 'import', NULL, NULL)"
            )
        )
    upgrade(engine)
    with engine.connect() as connection:
        changes = tag_changes(connection, 1)
    engine.dispose()
    assert [(c.tag, c.source, c.change, c.as_of, c.rest_until) for c in changes] == [
        ("nudge-fatigued", "system", TAGGED, date(2026, 3, 1), date(2026, 5, 29))
    ]
