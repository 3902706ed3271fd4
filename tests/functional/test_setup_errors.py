"""Settings and the database fail with one line: each problem an operator can cause with a
setting, a ``.env`` or the database file reaches them as one line on stderr that names the
setting or file and says what to do, and a non-zero exit status; never a traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow


def one_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The single ``error: …`` line of a command that failed with ``status``."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert result.returncode == status, result.stderr
    return lines[0]


@pytest.fixture
def migrated(nudgeflow: Nudgeflow, tmp_path: Path) -> Path:
    result = nudgeflow("db", "upgrade")
    assert result.returncode == 0, result.stderr
    return tmp_path / "nudgeflow.db"


# --- the database URL ------------------------------------------------------------------------


def test_a_port_that_is_not_a_number(nudgeflow: Nudgeflow) -> None:
    url = "postgresql+psycopg://nudgeflow:secret@db.example:54x2/nudgeflow"
    line = one_error(nudgeflow("runs", NUDGEFLOW_DATABASE_URL=url), 2)
    assert line.startswith("error: NUDGEFLOW_DATABASE_URL: the port is not a number")
    assert "secret" not in line


def test_an_unreachable_postgresql_names_the_server_and_the_setting(nudgeflow: Nudgeflow) -> None:
    url = "postgresql+psycopg://nudgeflow:secret@127.0.0.1:1/nudgeflow"
    line = one_error(nudgeflow("runs", NUDGEFLOW_DATABASE_URL=url), 2)
    assert "the PostgreSQL database nudgeflow on 127.0.0.1:1" in line
    assert "Connection refused" in line and "NUDGEFLOW_DATABASE_URL" in line
    assert "secret" not in line


def test_a_url_for_a_driver_nudgeflow_does_not_install(nudgeflow: Nudgeflow) -> None:
    url = "mysql://nudgeflow@127.0.0.1:3306/nudgeflow"  # no MySQL driver is installed
    line = one_error(nudgeflow("runs", NUDGEFLOW_DATABASE_URL=url), 2)
    assert "NUDGEFLOW_DATABASE_URL: expected a SQLAlchemy URL starting sqlite:///" in line
    assert "got 'mysql'" in line
    assert "postgresql+psycopg://" in line


# --- the SQLite file -------------------------------------------------------------------------


def test_a_read_only_database_refuses_writes_in_one_line(
    nudgeflow: Nudgeflow, migrated: Path, tmp_path: Path
) -> None:
    (tmp_path / "members.csv").write_text("member_id,email\nm1,ann@example.com\n")
    # SQLite's own read-only mode: the same refusal as a file without write permission, and
    # it holds for root too.
    url = f"sqlite:///file:{migrated}?mode=ro&uri=true"
    result = nudgeflow("members", "import", "members.csv", NUDGEFLOW_DATABASE_URL=url)
    line = one_error(result, 2)
    assert f"the SQLite file {migrated} is read-only" in line
    assert "writable" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files anyway")
def test_a_database_file_without_write_permission(
    nudgeflow: Nudgeflow, migrated: Path, tmp_path: Path
) -> None:
    (tmp_path / "members.csv").write_text("member_id,email\nm1,ann@example.com\n")
    migrated.chmod(0o444)
    line = one_error(nudgeflow("members", "import", "members.csv"), 2)
    assert "is read-only" in line


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_a_folder_where_no_database_can_be_created(nudgeflow: Nudgeflow) -> None:
    # /proc exists and nobody, not even root, may create a file in it.
    line = one_error(nudgeflow("runs", NUDGEFLOW_DATABASE_URL="sqlite:////proc/nudgeflow.db"), 2)
    assert "cannot open or create the SQLite file /proc/nudgeflow.db" in line


def test_a_folder_that_cannot_be_created(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / "var").write_text("a file where the folder should be")
    url = f"sqlite:///{tmp_path / 'var' / 'nudgeflow.db'}"
    line = one_error(nudgeflow("runs", NUDGEFLOW_DATABASE_URL=url), 2)
    assert f"cannot create the folder {tmp_path / 'var'}" in line


def test_a_file_that_is_not_a_database(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / "nudgeflow.db").write_bytes(b"members,events\n" * 300)
    line = one_error(nudgeflow("runs"), 2)
    assert f"the SQLite file {tmp_path / 'nudgeflow.db'} is not a SQLite database" in line


def test_a_database_migrated_by_a_newer_nudgeflow(nudgeflow: Nudgeflow, migrated: Path) -> None:
    with sqlite3.connect(migrated) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    line = one_error(nudgeflow("runs"), 2)
    assert "was migrated by a newer nudgeflow (schema revision 0099_from_the_future" in line
    assert "upgrade nudgeflow" in line


LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def locked(migrated: Path) -> Iterator[Path]:
    """The database, its write lock held by another process until the test ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(migrated)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    yield migrated
    holder.communicate("", timeout=30)


def test_a_locked_database_times_out_with_a_clear_line(
    nudgeflow: Nudgeflow, locked: Path, tmp_path: Path
) -> None:
    (tmp_path / "members.csv").write_text("member_id,email\nm1,ann@example.com\n")
    url = f"sqlite:///{locked}?timeout=1"
    result = nudgeflow("members", "import", "members.csv", NUDGEFLOW_DATABASE_URL=url)
    line = one_error(result, 3)
    assert f"the SQLite file {locked} is locked" in line
    assert "more than 1 s" in line and "?timeout=SECONDS" in line
    # Reading is not blocked by a writer (WAL).
    assert nudgeflow("runs", NUDGEFLOW_DATABASE_URL=url).returncode == 0


# --- the signing key -----------------------------------------------------------------------


def test_an_empty_signing_key_is_refused_at_start_up(nudgeflow: Nudgeflow) -> None:
    line = one_error(nudgeflow("runs", NUDGEFLOW_SIGNING_KEY=""), 2)
    assert line.startswith("error: NUDGEFLOW_SIGNING_KEY: must not be empty")


def test_the_default_signing_key_is_refused_by_a_command_that_sends(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    result = nudgeflow("run", "--as-of", "2026-11-21", NUDGEFLOW_SIGNING_KEY="change-me")
    line = one_error(result, 2)
    assert "NUDGEFLOW_SIGNING_KEY: still the default 'change-me'" in line
    assert not (tmp_path / "nudgeflow.db").exists()  # refused before anything was touched


def test_the_default_signing_key_only_warns_a_preview(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("preview", "adopter-welcome", "--sample", NUDGEFLOW_SIGNING_KEY="change-me")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("warning: NUDGEFLOW_SIGNING_KEY is the default 'change-me'")
    assert len(result.stderr.splitlines()) == 1


# --- .env --------------------------------------------------------------------------------------


def test_a_dotenv_that_is_not_utf8(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"NUDGEFLOW_TIMEZONE=UTC\n# caf\xe9 au lait\n")
    line = one_error(nudgeflow("runs"), 2)
    assert line == "error: .env:2: not UTF-8 text (byte 0xe9); save it as UTF-8"


def test_a_dotenv_fifo_is_refused_rather_than_waited_on(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / ".env")
    line = one_error(nudgeflow.configure(timeout=30)("runs"), 2)
    assert line.startswith("error: .env: is a FIFO")


# --- the outbox --------------------------------------------------------------------------------


def test_an_outbox_that_is_a_file_stops_the_run_before_any_action(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox"
    outbox.write_text("a file where the outbox folder should be")
    line = one_error(nudgeflow("run", "--as-of", "2026-11-21"), 2)
    assert line == (
        f"error: NUDGEFLOW_EMAIL__OUTBOX_DIR: {outbox} exists and is not a folder; "
        "remove it or choose another path"
    )
    assert not (tmp_path / "nudgeflow.db").exists()  # no night began, no action was touched
