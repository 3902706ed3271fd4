"""The reader process: a large CSV events file is read and checked by a second ``python -P``
process while the importing process inserts; chunks come back as pickles over a pipe.
``read_events`` is the child's side, ``parsed_elsewhere`` the parent's. The child preloads
member keys from the database itself: a SQLite file opened read-only, or a PostgreSQL
connection (``source`` is then a ``postgresql://`` URL for psycopg)."""

from __future__ import annotations

import gc
import os
import pickle
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nudgeflow.errors import ImportFileError, StoreError
from store.importer.checking import Chunk, CsvEventChunks, member_keys
from store.importer.csv_records import CsvRecords
from store.importer.reading import open_text, read_header
from store.rows import check_columns

# Read and check CSV events in a second process (given a second core) from this file size
# (~280 k events): below it, starting the process (~0.3 s) costs about what it saves.
PARALLEL_FROM_BYTES = 16 << 20


def should_read_elsewhere(file_size: int, source: str) -> bool:
    """Whether a second process pays: a large file, a second core, a database it can open on
    its own (a SQLite file, or a PostgreSQL URL)."""
    return (
        file_size >= PARALLEL_FROM_BYTES
        and (os.cpu_count() or 1) > 1
        and (_is_postgres(source) or _is_plain_file(source))
    )


def _is_postgres(source: str) -> bool:
    return source.startswith("postgresql://")


def _is_plain_file(database: str) -> bool:
    return bool(database) and database != ":memory:" and not database.startswith("file:")


@contextmanager
def parsed_elsewhere(
    path: Path, source: str, import_id: int, chunk_size: int
) -> Iterator[Iterator[Chunk]]:
    """Chunks read and checked by a second process (member keys included) while this one
    inserts; it is stopped if this one stops early.

    A plain ``python -c`` child talking pickles over a pipe, not ``multiprocessing``: spawn
    would re-run the caller's main module, and fork would copy open SQLite connections. The
    pipe holds less than a chunk, so the reader stays at most one chunk ahead.
    """
    # The child imports this module from where this process found it: its sys.path, and
    # not the current directory first (-P).
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(entry for entry in sys.path if entry)
    worker = subprocess.Popen(
        [sys.executable, "-P", "-c", f"from {__name__} import read_events; read_events()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
    )
    assert worker.stdin is not None and worker.stdout is not None
    incoming = worker.stdout

    def receive() -> Iterator[Chunk]:
        while True:
            try:
                kind, item = pickle.load(incoming)
            except EOFError:
                raise StoreError(
                    f"{path}: the import's reader process ended without a word "
                    f"(exit code {worker.wait()})"
                ) from None
            if kind == "error":
                raise ImportFileError(item)
            if kind == "crash":
                raise StoreError(f"{path}: the import's reader process failed:\n{item}")
            yield item
            if item[0] < chunk_size:
                return

    try:
        with worker.stdin as outgoing:
            # The URL (with any password) goes over the pipe, not on the command line.
            pickle.dump((str(path), source, import_id, chunk_size), outgoing)
        yield receive()
    finally:
        if worker.poll() is None:
            worker.kill()  # stopped early: an error here, or an interrupt
        worker.wait()
        incoming.close()


def read_events() -> None:
    """The reader process: send the chunks of a CSV events file (already checked whole)."""
    gc.disable()
    outgoing = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing else may write into the pipe
    path, source, import_id, chunk_size = pickle.load(sys.stdin.buffer)
    try:
        known = _preload(source, Path(path).stat().st_size)
        with open(path, "rb") as raw, open_text(raw, "csv") as stream:
            records = CsvRecords(stream)
            columns = check_columns(read_header(records, Path(path)), "events")
            chunks = CsvEventChunks(records, columns, known, import_id)
            while True:
                chunk = chunks.read(chunk_size, raw)
                pickle.dump(("chunk", chunk), outgoing, protocol=pickle.HIGHEST_PROTOCOL)
                outgoing.flush()
                if chunk[0] < chunk_size:
                    break
    except ImportFileError as exc:
        pickle.dump(("error", str(exc)), outgoing)
    except BrokenPipeError:
        return  # the importer stopped
    except BaseException:
        pickle.dump(("crash", traceback.format_exc()), outgoing)
    outgoing.close()


def _preload(source: str, file_size: int) -> dict[str, int]:
    """The member keys ``member_keys`` preloads, read from the database ``source`` names."""
    if _is_postgres(source):
        import psycopg  # only here: a SQLite import never needs it

        with psycopg.connect(source) as server:
            return member_keys(server.cursor(), file_size)
    uri = Path(source).resolve().as_uri() + "?mode=ro"
    database = sqlite3.connect(uri, uri=True)
    try:
        return member_keys(database.cursor(), file_size)
    finally:
        database.close()
