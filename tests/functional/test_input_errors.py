"""What a user types or points at fails with one line: a business date out of range (the same
check on every command that takes ``--as-of``), a FIFO or a directory where a file is
expected (never waited on), an ``--out`` that cannot be written; and a bug is one
"internal error" line, its traceback shown only with ``--debug`` or ``NUDGEFLOW_DEBUG=1``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.functional.runner import ROOT, Nudgeflow


def one_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The single ``error: …`` line of a command that failed with ``status``."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert result.returncode == status, result.stderr
    return lines[0]


# Every command that takes --as-of, with what it needs besides.
AS_OF_COMMANDS = [
    ("run",),
    ("plan",),
    ("why", "m1"),
    ("preview", "loyalist-discount", "--sample"),
    ("actions",),
]


@pytest.mark.parametrize("command", AS_OF_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("day", ["1969-12-31", "9999-12-31"])
def test_as_of_out_of_range_is_refused_by_every_command(
    nudgeflow: Nudgeflow, tmp_path: Path, command: tuple[str, ...], day: str
) -> None:
    line = one_error(nudgeflow(*command, "--as-of", day), 2)
    assert line.startswith(f"error: --as-of: {day} is out of range: use a date from 1970-01-01")
    assert "(a year from today)" in line
    assert not (tmp_path / "nudgeflow.db").exists()  # refused before anything was opened


@pytest.mark.parametrize("command", AS_OF_COMMANDS, ids=lambda c: c[0])
def test_as_of_that_is_not_a_date_reads_the_same_everywhere(
    nudgeflow: Nudgeflow, command: tuple[str, ...]
) -> None:
    line = one_error(nudgeflow(*command, "--as-of", "21/11/2026"), 2)
    assert line == "error: --as-of: expected a date as YYYY-MM-DD, got '21/11/2026'"


def test_the_other_dates_are_checked_the_same_way(nudgeflow: Nudgeflow) -> None:
    line = one_error(nudgeflow("ledger", "export", "--from", "0001-01-01", "--to", "2026-01-01"), 2)
    assert line.startswith("error: --from: 0001-01-01 is out of range")
    line = one_error(nudgeflow("run", "--from", "2026-01-01", "--to", "2026-02-30"), 2)
    assert line.startswith("error: --to: expected a date as YYYY-MM-DD, got '2026-02-30'")


# --- a FIFO or a directory where a file is expected ------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "members.csv"
    os.mkfifo(path)
    return path


def test_an_import_file_that_is_a_fifo_is_refused_not_waited_on(
    nudgeflow: Nudgeflow, fifo: Path
) -> None:
    line = one_error(nudgeflow.configure(timeout=30)("members", "import", fifo.name), 2)
    assert line.startswith("error: members.csv: is a FIFO (named pipe), not a file")


def test_an_import_file_that_is_a_directory(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / "events.csv").mkdir()
    line = one_error(nudgeflow("events", "import", "events.csv"), 2)
    assert line == "error: events.csv: is a directory, not a file"


def test_a_shipping_file_that_is_a_fifo_or_a_directory(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "shipped.csv")
    (tmp_path / "shipped").mkdir()
    quick = nudgeflow.configure(timeout=30)
    line = one_error(quick("gifts", "mark-shipped", "shipped.csv"), 2)
    assert line.startswith("error: shipped.csv: is a FIFO (named pipe), not a file")
    line = one_error(quick("gifts", "mark-shipped", "shipped"), 2)
    assert line == "error: shipped: is a directory, not a file"


def test_campaign_files_that_are_a_fifo_or_a_directory_are_reported_not_waited_on(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    campaigns = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", campaigns)
    os.mkfifo(campaigns / "spring-sale.yaml")
    (campaigns / "winter-sale.yaml").mkdir()
    result = nudgeflow.configure(timeout=60)("validate", NUDGEFLOW_CAMPAIGNS_DIR=str(campaigns))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "campaigns/spring-sale.yaml:1:1: is a FIFO (named pipe), not a file: "
        "reading it would wait for a writer"
    ) in result.stdout
    assert "campaigns/winter-sale.yaml:1:1: is a directory, not a file" in result.stdout


# --- --out -------------------------------------------------------------------------------------


def test_an_out_that_cannot_be_written(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / "schema.json").mkdir()
    line = one_error(nudgeflow("schema", "--out", "schema.json"), 2)
    assert line == "error: --out: cannot write schema.json: Is a directory"
    (tmp_path / "previews").write_text("a file where the folder should be")
    result = nudgeflow("preview", "loyalist-discount", "--sample", "--out", "previews")
    assert one_error(result, 2).startswith("error: --out: cannot write previews")


# --- bugs ----------------------------------------------------------------------------------------

# A bug planted in the child process (sitecustomize runs before the command): listing the
# runs raises what no user can cause.
PLANTED_BUG = """
import store.reports

def list_runs(*args, **kwargs):
    raise ZeroDivisionError("planted for the test")

store.reports.list_runs = list_runs
"""


@pytest.fixture
def buggy(nudgeflow: Nudgeflow, tmp_path: Path) -> Nudgeflow:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(PLANTED_BUG)
    return nudgeflow.configure(PYTHONPATH=f"{hooks}{os.pathsep}{nudgeflow.env['PYTHONPATH']}")


def test_a_bug_is_one_internal_error_line_with_exit_70(buggy: Nudgeflow) -> None:
    result = buggy("runs")
    assert result.returncode == 70, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "internal error: ZeroDivisionError: planted for the test; run again with --debug "
        "(or NUDGEFLOW_DEBUG=1) for the traceback"
    ]


@pytest.mark.parametrize("how", ["--debug", "NUDGEFLOW_DEBUG"])
def test_debug_shows_the_traceback(buggy: Nudgeflow, how: str) -> None:
    with_debug = ("--debug", "runs") if how == "--debug" else ("runs",)
    result = buggy(*with_debug, NUDGEFLOW_DEBUG="1" if how == "NUDGEFLOW_DEBUG" else "")
    assert result.returncode == 70, result.stderr
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert 'raise ZeroDivisionError("planted for the test")' in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "internal error: ZeroDivisionError: planted for the test"
    )


def test_debug_also_shows_where_a_user_error_was_raised(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("--debug", "runs", NUDGEFLOW_DATABASE_URL="postgresql+psycopg://h:x/db")
    assert result.returncode == 2
    assert "Traceback (most recent call last):" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "error: NUDGEFLOW_DATABASE_URL: the port is not a number"
    )
