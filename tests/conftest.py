"""Shared fixtures: a migrated database on SQLite always, and on PostgreSQL when
``NUDGEFLOW_TEST_POSTGRES_URL`` is set (then an unreachable server fails the tests)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from store.engine import create_store_engine
from store.migrate import upgrade

POSTGRES_URL = os.environ.get("NUDGEFLOW_TEST_POSTGRES_URL")
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database (not migrated); PostgreSQL gets a schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nudgeflow.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("NUDGEFLOW_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_store_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A migrated engine on each database."""
    engine = create_store_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API server for the few tests that go through the engine."""
    from settings.prefect_env import prepare_prefect_environment

    prepare_prefect_environment()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_api_url(prefect_harness: None) -> str:
    """The harness's API server, for ``nudgeflow`` processes started by tests: pointing
    ``PREFECT_API_URL`` at it spares each of them a temporary server of its own (10–25 s).
    One test (tests/functional/test_nightly_cli.py) still runs without, as a user would."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the Prefect test harness did not set PREFECT_API_URL"
    return str(url)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the Prefect tests last: their session-wide API server keeps threads busy in this
    process (drawing on the global ``random``), which hypothesis rightly reports as
    non-determinism in the property tests that would otherwise run after it."""
    items.sort(key=lambda item: item.get_closest_marker("prefect") is not None)
