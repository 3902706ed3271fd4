"""``nudgeflow simulate`` through the real console script: the backtest of a crafted
community as JSON and as tables, two folders side by side, the real database left byte for
byte as it was (also when interrupted), and every bad input as one line with exit status 2."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from pathlib import Path

import pytest

from store.engine import create_store_engine
from store.migrate import upgrade
from tests.functional.runner import Nudgeflow
from tests.integration.simulate_world import EXPECTED_A, N1, N5, W19, populate, write_folders

FROM, TO = N1.isoformat(), N5.isoformat()


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """The community in the functional database; campaign folders A and B."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        populate(connection)
    engine.dispose()
    return write_folders(tmp_path)


def fingerprint(folder: Path) -> str:
    """The database file's digest. A process that ends with its connections open leaves an
    empty write-ahead log beside it (any command does): empty, it holds no change."""
    wal = folder / "nudgeflow.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    return hashlib.sha256((folder / "nudgeflow.db").read_bytes()).hexdigest()


def test_json_has_the_known_figures_and_the_assumption(
    nudgeflow: Nudgeflow, world: tuple[Path, Path], tmp_path: Path
) -> None:
    before = fingerprint(tmp_path)
    result = nudgeflow(
        "simulate", "--from", FROM, "--to", TO, "--campaigns", str(world[0]), "--json"
    )
    assert result.returncode == 0, result.stderr
    assert fingerprint(tmp_path) == before
    document = json.loads(result.stdout)
    assert document["assumption"].startswith("assumes no new responses")
    assert (document["from"], document["to"], document["nights"]) == (FROM, TO, 5)
    found = {
        (c["id"], w["week"]): {
            "selected": w["selected"],
            "excluded": w["excluded"],
            "fatigue_tags": w["fatigue_tags"],
        }
        for c in document["campaigns"]
        for w in [*c["weeks"], c["total"]]
    }
    assert found == EXPECTED_A
    gift = next(c for c in document["campaigns"] if c["id"] == "gift")
    assert gift["budget"] == "10.00 USD per month"
    assert gift["total"]["cost"]["text"] == "10.00 USD"
    assert gift["total"]["budget_left"]["minor"] == 0
    assert gift["weeks"][0]["frequency_caps_hit"] == 0


def test_tables_say_what_was_assumed_first(
    nudgeflow: Nudgeflow, world: tuple[Path, Path], tmp_path: Path
) -> None:
    before = fingerprint(tmp_path)
    result = nudgeflow("simulate", "--from", FROM, "--to", TO, "--campaigns", str(world[0]))
    assert result.returncode == 0, result.stderr
    assert fingerprint(tmp_path) == before
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Assumes no new responses: members respond only as the stored")
    assert lines[1].startswith("Backtest of ") and "nothing was sent, issued or written" in lines[1]
    assert "gift (budget 10.00 USD per month)" in result.stdout
    week = next(line for line in lines if line.strip().startswith(W19) and "10.00 USD" in line)
    # week, nights, selected, held out, already received, budget, fatigue tags, cost, left
    assert week.split() == [W19, "3", "2", "0", "4", "3", "0", "10.00", "USD", "0.00", "USD"]


def test_compare_puts_both_folders_side_by_side(
    nudgeflow: Nudgeflow, world: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = world
    before = fingerprint(tmp_path)
    args = ("simulate", "--from", FROM, "--to", TO, "--campaigns", str(a), "--compare", str(b))
    result = nudgeflow(*args, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["assumption"].startswith("assumes no new responses")
    rows = {(r["campaign"], r["week"], r["measure"]): r for r in document["differences"]}
    assert rows[("gift", "total", "selected")] | {} == {
        "campaign": "gift",
        "week": "total",
        "measure": "selected",
        "a": 2,
        "b": 3,
        "difference": 1,
        "currency": None,
    }
    assert rows[("gift", "total", "reward cost")]["difference"] == 500
    assert rows[("daily", "total", "selected")]["b"] is None
    assert document["b"]["campaigns"][0]["budget"] == "15.00 USD per month"

    text = nudgeflow(*args)
    assert text.returncode == 0, text.stderr
    assert fingerprint(tmp_path) == before
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Assumes no new responses")
    assert f"A = {a} against B = {b}" in lines[1]
    assert any(line.split()[-5:] == ["A", "B", "B", "-", "A"] for line in lines)  # the header
    cost = [line.split() for line in lines if "reward cost" in line]
    assert ["reward", "cost", "10.00", "USD", "15.00", "USD", "+5.00"] in [c[-7:] for c in cost]
    assert any(line.split()[-4:] == ["selected", "4", "-", "-4"] for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-02-30", "--to", TO), "error: --from: expected a date as YYYY-MM-DD"),
        (("--from", FROM, "--to", "2026-05-07"), "error: --to 2026-05-07 is before --from"),
        (("--from", FROM, "--to", "2027-06-30"), "error: --from 2026-05-08 --to 2027-06-30 is"),
        (("--from", FROM, "--to", TO, "--campaigns", "nowhere"), "error: --campaigns nowhere: no"),
        (("--from", FROM, "--to", TO, "--compare", "nowhere"), "error: --compare nowhere: no"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    nudgeflow: Nudgeflow, world: tuple[Path, Path], args: tuple[str, ...], message: str
) -> None:
    result = nudgeflow("simulate", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_broken_campaign_file_is_named_with_its_line(
    nudgeflow: Nudgeflow, world: tuple[Path, Path]
) -> None:
    b = world[1]
    gift = b / "gift.yaml"
    gift.write_text(gift.read_text().replace("priority: 10", "priority: high"))
    result = nudgeflow("simulate", "--from", FROM, "--to", TO, "--compare", str(b))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.splitlines()) == 1
    expected = f"error: --compare {b}: {gift}:3:1: priority: expected a whole number"
    assert result.stderr.startswith(expected), result.stderr
    assert "nudgeflow validate lists every problem" in result.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_backtest_leaves_no_copy_and_the_database_as_it_was(
    nudgeflow: Nudgeflow, world: tuple[Path, Path], tmp_path: Path, stop: signal.Signals
) -> None:
    scratch_parent = tmp_path / "tmp"
    scratch_parent.mkdir()
    before = fingerprint(tmp_path)
    # A year of nights (the most a backtest takes): long enough to still be running when the
    # signal comes, however fast the machine.
    running = nudgeflow.configure(TMPDIR=str(scratch_parent)).start(
        "simulate", "--from", "2025-12-01", "--to", "2026-11-30", "--campaigns", str(world[0])
    )
    deadline = time.monotonic() + 60
    while not list(scratch_parent.glob("nudgeflow-scratch-*/scratch.db")):
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "no scratch copy appeared"
        time.sleep(0.1)
    time.sleep(0.3)  # a night or two under way
    running.send_signal(stop)
    _, err = running.communicate(timeout=60)
    assert running.returncode != 0
    assert "Traceback" not in err
    assert list(scratch_parent.iterdir()) == []
    assert fingerprint(tmp_path) == before
