"""Alembic environment: migrations always run on the engine handed over by ``store.migrate``."""

from __future__ import annotations

from alembic import context

from store import reward_tables, schema
from store.ledger import tables as ledger_tables
from store.metadata import metadata

# Every table module, so that ``metadata`` holds the whole schema.
TABLE_MODULES = (schema, reward_tables, ledger_tables)

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
