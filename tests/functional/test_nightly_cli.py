"""The whole loop as a user runs it: sample data → imports → `nudgeflow run` (through the
Prefect engine, on a temporary server) → `stages` and `members show`, on SQLite and on
PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow

pytestmark = pytest.mark.prefect


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, db_url: str) -> Nudgeflow:
    """The console script on each database, in New York. No PREFECT_API_URL: `nudgeflow run`
    starts a temporary Prefect server, as it does for a new user."""
    return nudgeflow.configure(
        timeout=300, NUDGEFLOW_DATABASE_URL=db_url, NUDGEFLOW_TIMEZONE="America/New_York"
    )


def test_sample_community_through_the_nightly_flow(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    data = tmp_path / "demo"
    made = nudgeflow(
        "demo-data",
        "--members",
        "300",
        "--days",
        "400",
        "--seed",
        "3",
        "--end",
        "2026-06-30",
        "--out",
        str(data),
    )
    assert made.returncode == 0, made.stderr
    for kind in ("members", "events"):
        imported = nudgeflow(kind, "import", str(data / f"{kind}.csv"))
        assert imported.returncode == 0, imported.stderr
        assert imported.stdout.startswith("imported ")
        again = nudgeflow(kind, "import", str(data / f"{kind}.csv"))
        assert "imported 0, updated 0, rejected 0" in again.stdout

    night = nudgeflow("run", "--from", "2026-06-29", "--to", "2026-06-30")
    assert night.returncode == 0, night.stdout + night.stderr
    assert "night 2026-06-29: 300 profiles refreshed" in night.stdout
    assert "night 2026-06-30: 300 profiles refreshed" in night.stdout
    assert "Stage funnel as of 2026-06-30" in night.stdout

    funnel = json.loads(nudgeflow("stages", "--json").stdout)
    assert funnel["as_of"] == "2026-06-30"
    assert funnel["previous_as_of"] == "2026-06-29"
    assert list(funnel["stages"]) == ["adopter", "loyalist", "advocate", ""]
    assert sum(funnel["stages"].values()) == 300
    assert all(funnel["stages"][s] > 0 for s in ("adopter", "loyalist", "advocate"))

    shown = nudgeflow("members", "show", "m000001", "--json")
    assert shown.returncode == 0, shown.stderr
    member = json.loads(shown.stdout)
    for key in (
        "member_id",
        "email",
        "stage",
        "stage_entered_on",
        "stage_history",
        "recency_days",
        "frequency",
        "monetary",
        "rfm",
        "score",
        "tags",
    ):
        assert key in member
    assert member["profile_as_of"] == "2026-06-30"
    assert set(member["monetary"]) == {"amount", "currency"}
    assert set(member["rfm"]) == {"r", "f", "m", "segment"}

    missing = nudgeflow("members", "show", "nobody")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: no member with member_id 'nobody'"
