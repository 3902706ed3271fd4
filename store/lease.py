"""The run lease: only one nightly run per database at a time.

A run holds the lease for as long as it works, ``with hold_lease(engine, as_of=day):``.

* **The row.** ``run_lease`` has one row per lease name saying who holds it, since when and
  until when. It is claimed in one write transaction: ``INSERT … ON CONFLICT DO NOTHING``
  when there is no row, else ``UPDATE … WHERE expires_at < now`` (compare-and-swap on the
  expired row just read) to take over from a holder that stopped heartbeating. Neither can
  succeed for two processes: on SQLite the transaction holds the write lock from its first
  statement (``BEGIN IMMEDIATE``); on PostgreSQL a conflicting insert waits for the other
  transaction and then does nothing, and the update re-checks its ``WHERE`` on the committed
  row. So the loser of a race gets ``RunInProgress``, never an ``IntegrityError``.
* **The heartbeat.** A daemon thread moves ``heartbeat_at`` and ``expires_at`` forward every
  ``heartbeat_seconds``. A killed run stops heartbeating, its lease expires ``ttl_seconds``
  later and the next run takes over. A heartbeat that finds the row gone or someone else's
  marks the lease *lost* (``Lease.lost``) and stops; the run should stop before its next
  outside effect. Transient database errors are retried until the lease would expire.
* **The advisory lock (PostgreSQL).** The run also holds a session-level
  ``pg_try_advisory_lock`` on a dedicated AUTOCOMMIT connection (never idle in a
  transaction). The server drops it the moment that session ends, killed process included,
  so it guards the run even if the row were deleted by hand; the row is what tells a second
  run *who* is running. It is taken first and released last. Its key hashes the schema and
  the lease name, so databases that share a server through schemas do not block each other.

Release deletes the row only while it is still ours, then unlocks. Times come from an
injectable ``clock`` (aware, or naive UTC) and are stored naive UTC; hosts that share a
database are assumed to keep their clocks within seconds of each other (NTP), far below a
TTL of minutes.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Insert, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import SQLAlchemyError

from nudgeflow.errors import RunInProgress
from nudgeflow.timeutil import Clock, system_clock
from store.engine import immediate_transaction
from store.schema import run_lease

# A claim retries when the row changes under it (released or taken over meanwhile).
_CLAIM_ATTEMPTS = 3
_HOLDER_LENGTH = 200  # run_lease.holder is String(200)
_L = run_lease.c


def default_holder() -> str:
    """``hostname:pid``, which tells an operator which process to look at."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _naive_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


class Lease:
    """A held lease: who holds it, since when, until when, and whether it has been lost."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        holder: str,
        started_at: datetime,
        expires_at: datetime,
        ttl: timedelta,
        clock: Clock,
        took_over_from: str | None,
        advisory: _AdvisoryLock | None,
    ) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.started_at = started_at
        self.expires_at = expires_at
        self.ttl = ttl
        self.clock = clock
        # The holder of the expired lease this run took over, if any (worth reporting).
        self.took_over_from = took_over_from
        self._advisory = advisory
        self._lost = threading.Event()

    @property
    def lost(self) -> bool:
        """True once a heartbeat found the lease gone, someone else's, or past its expiry."""
        return self._lost.is_set()

    def renew(self) -> bool:
        """Extend the lease to ``ttl`` past now; False (and the lease is lost) if it is no
        longer ours. Database errors on the row propagate; the heartbeat retries them."""
        if self._lost.is_set():
            return False
        if self._advisory is not None and not self._advisory.alive():
            self._lost.set()
            return False
        now = _naive_utc(self.clock())
        expires_at = now + self.ttl
        with immediate_transaction(self.engine) as connection:
            renewed = connection.execute(
                update(run_lease)
                .where(self._is_ours())
                .values(heartbeat_at=now, expires_at=expires_at)
            ).rowcount
        if renewed != 1:
            self._lost.set()
            return False
        self.expires_at = expires_at
        return True

    def _is_ours(self) -> ColumnElement[bool]:
        # holder alone is not enough: the same process may have held an earlier lease.
        return (
            (_L.name == self.name) & (_L.holder == self.holder) & (_L.started_at == self.started_at)
        )

    def _heartbeat(self, every: float, stop: threading.Event) -> None:
        while not stop.wait(every):
            try:
                if not self.renew():
                    return
            except SQLAlchemyError:
                # Busy or unreachable for a moment: try again next beat, until it is too late.
                if _naive_utc(self.clock()) >= self.expires_at:
                    self._lost.set()
                    return

    def _release(self) -> None:
        try:
            with immediate_transaction(self.engine) as connection:
                connection.execute(delete(run_lease).where(self._is_ours()))
        except SQLAlchemyError:
            pass  # the row expires by itself; failing here would hide how the run ended
        finally:
            if self._advisory is not None:
                self._advisory.release()


@contextmanager
def hold_lease(
    engine: Engine,
    name: str = "nightly",
    *,
    as_of: date | None,
    ttl_seconds: float = 300,
    heartbeat_seconds: float = 30,
    holder: str | None = None,
    clock: Clock = system_clock,
) -> Iterator[Lease]:
    """Hold the lease ``name`` for the body of the ``with``; raise ``RunInProgress`` if
    another run holds it. ``as_of`` is recorded for operators."""
    if not 0 < heartbeat_seconds < ttl_seconds:
        raise ValueError("heartbeat_seconds must be positive and shorter than ttl_seconds")
    holder = (holder or default_holder())[:_HOLDER_LENGTH]
    ttl = timedelta(seconds=ttl_seconds)
    advisory = _AdvisoryLock.take(engine, name, clock)  # None off PostgreSQL
    try:
        started_at, took_over_from = _claim_row(engine, name, holder, as_of, ttl, clock)
    except BaseException:
        if advisory is not None:
            advisory.release()
        raise
    lease = Lease(
        engine, name, holder, started_at, started_at + ttl, ttl, clock, took_over_from, advisory
    )
    stop = threading.Event()
    beat = threading.Thread(
        target=lease._heartbeat,
        args=(heartbeat_seconds, stop),
        name=f"nudgeflow-lease-{name}",
        daemon=True,
    )
    beat.start()
    try:
        yield lease
    finally:
        stop.set()
        beat.join()
        lease._release()


def _claim_row(
    engine: Engine, name: str, holder: str, as_of: date | None, ttl: timedelta, clock: Clock
) -> tuple[datetime, str | None]:
    """Insert the lease row or take over an expired one; return its ``started_at`` and the
    holder taken over from. Raises ``RunInProgress`` while the row is someone else's."""
    row: RowMapping | None = None
    for _ in range(_CLAIM_ATTEMPTS):
        now = _naive_utc(clock())
        values = {"holder": holder, "as_of": as_of, "started_at": now, "heartbeat_at": now}
        values["expires_at"] = now + ttl
        with immediate_transaction(engine) as connection:
            inserted = connection.execute(_insert_if_absent(connection, name, values)).first()
            if inserted is not None:
                return now, None
            row = _read_row(connection, name)
            if row is None:
                continue  # released in between: try again
            dead = holder_is_dead(str(row["holder"]))
            if row["expires_at"] >= now and not dead:
                raise _in_progress(row, clock)
            still_stale = [] if dead else [_L.expires_at < now]
            taken = connection.execute(
                update(run_lease)
                .where(
                    _L.name == name,
                    _L.holder == row["holder"],
                    _L.started_at == row["started_at"],
                    *still_stale,
                )
                .values(values)
            ).rowcount
            if taken == 1:
                return now, str(row["holder"])
    raise _in_progress(row, clock)


def holder_is_dead(holder: str) -> bool:
    """True when ``holder`` (``host:pid``) is a process on this host that no longer exists:
    its lease need not wait for expiry (a killed run is taken over at once). A holder on
    another host is never judged dead here; its lease expires instead."""
    host, _, pid_text = holder.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by someone else
    return False


def _insert_if_absent(connection: Connection, name: str, values: Mapping[str, Any]) -> Insert:
    # RETURNING tells whether the row went in (the drivers' rowcount for INSERT is -1 here).
    if connection.dialect.name == "postgresql":
        on_postgresql = postgresql.insert(run_lease).values(name=name, **values)
        return on_postgresql.on_conflict_do_nothing(index_elements=[_L.name]).returning(_L.name)
    on_sqlite = sqlite.insert(run_lease).values(name=name, **values)
    return on_sqlite.on_conflict_do_nothing(index_elements=[_L.name]).returning(_L.name)


def _read_row(connection: Connection, name: str) -> RowMapping | None:
    return connection.execute(select(run_lease).where(_L.name == name)).mappings().first()


def _in_progress(row: RowMapping | None, clock: Clock) -> RunInProgress:
    now = _naive_utc(clock())
    if row is None:
        return RunInProgress(None, None, None, None, now)
    return RunInProgress(
        row["holder"], row["started_at"], row["heartbeat_at"], row["expires_at"], now
    )


class _AdvisoryLock:
    """A session-level PostgreSQL advisory lock held on a connection of its own."""

    def __init__(self, connection: Connection, key: int) -> None:
        self._connection = connection
        self._key = key

    @classmethod
    def take(cls, engine: Engine, name: str, clock: Clock) -> _AdvisoryLock | None:
        """The held lock, or ``None`` on databases without advisory locks. Raises
        ``RunInProgress`` (with what the lease row says) if another session holds it."""
        if engine.dialect.name != "postgresql":
            return None
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            schema = connection.execute(text("SELECT current_schema()")).scalar() or ""
            key = _advisory_key(schema, name)
            locked = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
            ).scalar_one()
            if not locked:
                raise _in_progress(_read_row(connection, name), clock)
        except BaseException:
            connection.close()
            raise
        return cls(connection, key)

    def alive(self) -> bool:
        """Whether the session (and so the lock) still exists; also keeps it from idling out."""
        try:
            self._connection.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            return False
        return True

    def release(self) -> None:
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except SQLAlchemyError:
            # The session is gone and the server dropped the lock with it; never pool it.
            self._connection.invalidate()
        finally:
            self._connection.close()


def _advisory_key(schema: str, name: str) -> int:
    digest = hashlib.blake2b(f"nudgeflow.run_lease:{schema}:{name}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)
