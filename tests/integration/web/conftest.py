"""Fixtures of the service's tests: two members on each database, the service on them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from tests.integration.community import Person, insert_people
from tests.integration.web.service import Clock, make_app, serve


@pytest.fixture
def people(engine: sa.Engine) -> dict[str, int]:
    with engine.begin() as connection:
        return insert_people(connection, [Person("ada", None), Person("bob", None)])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(
    db_url: str, engine: sa.Engine, people: dict[str, int], clock: Clock
) -> Iterator[TestClient]:
    with serve(make_app(db_url, clock)) as client:
        yield client
