"""What every table module shares: one ``MetaData`` with its naming convention (so
constraint names are stable across databases and migrations), and the column types that
differ by database (``BigId``, ``Json``). The migrations' environment imports every table
module, so Alembic sees the whole schema.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Integer, MetaData
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An auto-incrementing 64-bit key; SQLite needs exactly INTEGER PRIMARY KEY for its rowid alias.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
