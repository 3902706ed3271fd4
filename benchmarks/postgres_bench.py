"""PostgreSQL for the benchmarks: a database of the benchmark's own, created on the server a
URL names and dropped after, and psql's ``\\copy`` as the bare baseline of a load."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

# The server to create the benchmark's database on (any database of it will do).
DEFAULT_URL = os.environ.get(
    "NUDGEFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def bench_database(url: str = DEFAULT_URL) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database on the server of ``url``; dropped after."""
    name = f"nudgeflow_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(url), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(url), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def psql_copy_seconds(url: str, path: Path, columns: int) -> float:
    """Seconds psql takes to ``\\copy`` the CSV file ``path`` (with a header line) into a new
    plain table of ``columns`` text columns (dropped after)."""
    table = f"bare_{uuid.uuid4().hex[:10]}"
    names = ", ".join(f"c{i} text" for i in range(columns))
    target = _libpq(url)
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} ({names})")
    try:
        started = time.perf_counter()
        subprocess.run(
            [
                "psql",
                "--no-psqlrc",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={target}",
                "--command",
                f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true)",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started
    finally:
        with psycopg.connect(target, autocommit=True) as connection:
            connection.execute(f"DROP TABLE {table}")
