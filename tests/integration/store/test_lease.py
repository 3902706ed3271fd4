"""The run lease on SQLite and PostgreSQL: one holder at a time, a clear refusal for the
second, release and takeover of an expired lease (a stale row, a SIGKILLed process), the
heartbeat, PostgreSQL's advisory lock, and processes racing for the lease."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from nudgeflow.errors import RunInProgress
from store.engine import create_store_engine
from store.lease import _claim_row, hold_lease
from store.schema import run_lease

ROOT = Path(__file__).resolve().parents[3]
AS_OF = date(2026, 11, 21)
START = datetime(2026, 11, 22, 2, 0, 3, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand (read from the heartbeat thread too)."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _row(engine: sa.Engine, name: str = "nightly") -> sa.RowMapping | None:
    with engine.connect() as connection:
        return (
            connection.execute(sa.select(run_lease).where(run_lease.c.name == name))
            .mappings()
            .first()
        )


def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def test_a_second_run_is_refused_while_the_lease_is_held(engine: sa.Engine) -> None:
    clock = FakeClock()
    with hold_lease(engine, as_of=AS_OF, holder="host-a:101", clock=clock) as lease:
        assert lease.holder == "host-a:101"
        assert lease.took_over_from is None
        later = FakeClock(START + timedelta(seconds=12))
        with (
            pytest.raises(RunInProgress) as refused,
            hold_lease(engine, as_of=AS_OF, holder="host-b:202", clock=later),
        ):
            pytest.fail("a second holder got in")
        row = _row(engine)
        assert row is not None
        assert row["holder"] == "host-a:101"
        assert row["as_of"] == AS_OF
    assert str(refused.value) == (
        "another run is in progress (started 2026-11-22 02:00:03 UTC by host-a:101,"
        " heartbeat 12 s ago, lease expires 2026-11-22 02:05:03 UTC)"
    )
    assert refused.value.exit_code == 3
    assert refused.value.holder == "host-a:101"


def test_release_lets_the_next_run_in(engine: sa.Engine) -> None:
    with hold_lease(engine, as_of=AS_OF, holder="first:1"):
        pass
    assert _row(engine) is None
    with pytest.raises(ZeroDivisionError), hold_lease(engine, as_of=AS_OF, holder="second:2"):
        1 / 0  # noqa: B018 - a run that fails still releases the lease
    assert _row(engine) is None
    with hold_lease(engine, as_of=AS_OF, holder="third:3") as lease:
        assert lease.took_over_from is None
        row = _row(engine)
        assert row is not None
        assert row["holder"] == "third:3"
    # Another lease name is independent of the nightly one.
    with (
        hold_lease(engine, as_of=AS_OF, holder="a:1"),
        hold_lease(engine, "backfill", as_of=AS_OF, holder="b:2"),
    ):
        pass


def test_an_expired_lease_left_behind_is_taken_over(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.insert(run_lease).values(
                name="nightly",
                holder="dead-host:4242",
                as_of=AS_OF,
                started_at=_naive(START) - timedelta(minutes=30),
                heartbeat_at=_naive(START) - timedelta(minutes=1),
                expires_at=_naive(START) + timedelta(minutes=4),
            )
        )
    clock = FakeClock()
    with (
        pytest.raises(RunInProgress, match=r"by dead-host:4242, heartbeat 60 s ago"),
        hold_lease(engine, as_of=AS_OF, holder="new:1", clock=clock),
    ):
        pass
    clock.advance(4 * 60 + 1)  # the dead holder never heartbeats again
    with hold_lease(engine, as_of=AS_OF, holder="new:1", clock=clock) as lease:
        assert lease.took_over_from == "dead-host:4242"
        assert lease.started_at == _naive(clock.now)
        row = _row(engine)
        assert row is not None
        assert (row["holder"], row["started_at"]) == ("new:1", _naive(clock.now))
        assert row["expires_at"] == _naive(clock.now) + timedelta(seconds=300)
    assert _row(engine) is None


# Takes the lease with the real clock and the default holder, says so, and waits to be killed.
HOLDER = """
import sys, time
from datetime import date
from store.engine import create_store_engine
from store.lease import hold_lease

engine = create_store_engine(sys.argv[1])
with hold_lease(engine, as_of=date(2026, 11, 21), ttl_seconds=60, heartbeat_seconds=1):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_run_on_this_host_is_taken_over_at_once(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    child = subprocess.Popen(
        [sys.executable, "-W", "error", str(script), db_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "held\n"
        expected = f"by {socket.gethostname()}:{child.pid}, heartbeat"
        with pytest.raises(RunInProgress, match=expected), hold_lease(engine, as_of=AS_OF):
            pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # Killed, it released nothing: its row stands, but its holder is a dead process on this
    # host, so the next run takes over at once instead of waiting for the expiry.
    row = _row(engine)
    assert row is not None

    def take_over() -> bool:
        # PostgreSQL drops the dead session's advisory lock a moment after the kill.
        try:
            with hold_lease(engine, as_of=AS_OF) as lease:
                assert lease.took_over_from == row["holder"]
        except RunInProgress:
            return False
        return True

    _eventually(take_over)


def test_the_heartbeat_extends_the_expiry(engine: sa.Engine) -> None:
    clock = FakeClock()
    with hold_lease(engine, as_of=AS_OF, clock=clock, heartbeat_seconds=0.02) as lease:
        clock.advance(100)

        def extended() -> bool:
            row = _row(engine)
            assert row is not None
            return bool(row["expires_at"] == _naive(START) + timedelta(seconds=400))

        _eventually(extended)
        row = _row(engine)
        assert row is not None
        assert row["heartbeat_at"] == _naive(START) + timedelta(seconds=100)
        assert row["started_at"] == _naive(START)
        _eventually(lambda: lease.expires_at == _naive(START) + timedelta(seconds=400))
        assert not lease.lost
    # Past the original expiry, but heartbeated: a second run is still refused meanwhile.
    clock.advance(250)
    with hold_lease(engine, as_of=AS_OF, clock=clock, heartbeat_seconds=0.02):
        later = FakeClock(clock.now + timedelta(seconds=250))
        clock.advance(100)
        _eventually(lambda: _expires(engine) == _naive(clock.now) + timedelta(seconds=300))
        with pytest.raises(RunInProgress), hold_lease(engine, as_of=AS_OF, clock=later):
            pass


def _expires(engine: sa.Engine) -> datetime | None:
    row = _row(engine)
    return None if row is None else row["expires_at"]


def test_a_heartbeat_that_finds_the_lease_taken_marks_it_lost(engine: sa.Engine) -> None:
    with hold_lease(engine, as_of=AS_OF, holder="slow:1", heartbeat_seconds=0.02) as lease:
        with engine.begin() as connection:  # as if another run had taken over
            connection.execute(sa.update(run_lease).values(holder="other:2"))
        _eventually(lambda: lease.lost)
        assert lease.renew() is False
    row = _row(engine)
    assert row is not None
    assert row["holder"] == "other:2"  # release deletes only its own row


def test_heartbeat_must_beat_within_the_ttl(engine: sa.Engine) -> None:
    with (
        pytest.raises(ValueError, match="shorter than ttl_seconds"),
        hold_lease(engine, as_of=AS_OF, ttl_seconds=30, heartbeat_seconds=30),
    ):
        pass


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_advisory_lock_alone_blocks_a_second_holder(
    engine: sa.Engine, db_url: str
) -> None:
    # The second run has a pool of its own: a session never shares another's advisory lock,
    # and a lock leaked into the first pool would show.
    second = create_store_engine(db_url)
    try:
        with hold_lease(engine, as_of=AS_OF, holder="first:1"):
            with engine.begin() as connection:
                connection.execute(sa.delete(run_lease))
            with (
                pytest.raises(RunInProgress) as refused,
                hold_lease(second, as_of=AS_OF, holder="second:2"),
            ):
                pass
            assert _row(engine) is None
        assert str(refused.value) == (
            "another run is in progress (started at an unknown time by an unknown holder:"
            " it holds the PostgreSQL advisory lock but no lease row)"
        )
        with (
            hold_lease(second, as_of=AS_OF, holder="second:2"),
            pytest.raises(RunInProgress, match="by second:2"),
            hold_lease(engine, as_of=AS_OF, holder="first:1"),
        ):
            pass
    finally:
        second.dispose()


# Each round: wait for the start file, try the lease, say "won" or "busy"; the winner holds
# it until the round's done file appears, then releases and says so.
RACER = """
import sys, time
from datetime import date
from pathlib import Path
from nudgeflow.errors import RunInProgress
from store.engine import create_store_engine
from store.lease import hold_lease

url, folder, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
engine = create_store_engine(url)
with engine.connect():
    pass
print("ready", flush=True)
for r in range(rounds):
    while not (folder / f"go-{r}").exists():
        time.sleep(0.0005)
    try:
        with hold_lease(engine, as_of=date(2026, 11, 21)):
            print("won", flush=True)
            while not (folder / f"done-{r}").exists():
                time.sleep(0.005)
        print("released", flush=True)
    except RunInProgress:
        print("busy", flush=True)
engine.dispose()
"""


@pytest.fixture
def racers(db_url: str, tmp_path: Path) -> Iterator[list[queue.Queue[str]]]:
    """Four racer processes (six rounds), each with a queue of the lines it prints."""
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    processes = [
        subprocess.Popen(
            [sys.executable, "-W", "error", str(script), db_url, str(tmp_path), "6"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    lines: list[queue.Queue[str]] = []
    for process in processes:
        assert process.stdout is not None
        lines.append(queue.Queue())
        threading.Thread(
            target=lambda out, q: [q.put(line.strip()) for line in out],
            args=(process.stdout, lines[-1]),
            daemon=True,
        ).start()
    try:
        yield lines
        for process in processes:
            assert process.wait(timeout=30) == 0
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()


def test_processes_racing_for_the_lease_exactly_one_wins(
    engine: sa.Engine, racers: list[queue.Queue[str]], tmp_path: Path
) -> None:
    assert [q.get(timeout=60) for q in racers] == ["ready"] * 4
    for r in range(6):
        if r % 2:  # odd rounds race to take over a dead run's expired lease
            with engine.begin() as connection:
                connection.execute(
                    sa.insert(run_lease).values(
                        name="nightly",
                        holder="dead:1",
                        as_of=AS_OF,
                        started_at=datetime(2026, 1, 1),
                        heartbeat_at=datetime(2026, 1, 1),
                        expires_at=datetime(2026, 1, 1, 0, 5),
                    )
                )
        (tmp_path / f"go-{r}").touch()
        said = [q.get(timeout=30) for q in racers]
        assert sorted(said) == ["busy", "busy", "busy", "won"], f"round {r}: {said}"
        (tmp_path / f"done-{r}").touch()
        assert racers[said.index("won")].get(timeout=30) == "released"
        assert _row(engine) is None


def test_threads_racing_to_claim_the_row_exactly_one_wins(engine: sa.Engine) -> None:
    """The row alone (without PostgreSQL's advisory lock in front of it): the losers of an
    insert race, or of a takeover race, get RunInProgress and never an IntegrityError."""
    clock = FakeClock()
    for stale in (False, True, False, True):
        if stale:
            with engine.begin() as connection:
                connection.execute(
                    sa.insert(run_lease).values(
                        name="race",
                        holder="dead:1",
                        as_of=AS_OF,
                        started_at=_naive(START) - timedelta(hours=1),
                        heartbeat_at=_naive(START) - timedelta(hours=1),
                        expires_at=_naive(START) - timedelta(minutes=55),
                    )
                )
        barrier = threading.Barrier(6)
        outcomes: list[str] = []

        def claim(
            i: int, barrier: threading.Barrier = barrier, outcomes: list[str] = outcomes
        ) -> None:
            barrier.wait()
            try:
                _claim_row(engine, "race", f"t{i}", AS_OF, timedelta(minutes=5), clock)
                outcomes.append("won")
            except RunInProgress:
                outcomes.append("busy")
            except Exception as error:  # reported below instead of dying in the thread
                outcomes.append(repr(error))

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["busy"] * 5 + ["won"], outcomes
        with engine.begin() as connection:
            connection.execute(sa.delete(run_lease))


def test_a_live_or_remote_holder_is_never_judged_dead() -> None:
    from store.lease import holder_is_dead

    assert not holder_is_dead(f"{socket.gethostname()}:{os.getpid()}")  # ourselves
    assert not holder_is_dead(f"{socket.gethostname()}:{os.getppid()}")  # alive
    assert not holder_is_dead("some-other-host:1")  # not ours to judge: it expires
    assert not holder_is_dead("no-pid-here")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert holder_is_dead(f"{socket.gethostname()}:{child.pid}")
