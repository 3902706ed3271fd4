"""Import members and events from CSV or JSON Lines: streamed in chunks, set-based, idempotent.

A file is checked whole before anything is written (readable, UTF-8, a usable header); a
file that fails raises ``ImportFileError`` and imports nothing. Then each chunk of rows is
parsed (``store.rows``), classified with one ``IN (...)`` query and written with
``executemany`` in its own transaction, so memory stays flat however long the file is.
Bad rows go to ``<file>.rejects.csv``; every good row is imported.

CSV events into SQLite, the ten-million-row case, take a fused path
(``store.importer.sqlite_events``): no per-row dicts, member keys preloaded, and a large file
read in a second process (``store.importer.reader_process``).
"""

from __future__ import annotations

from store.importer.file_import import import_file
from store.importer.forgotten import Returning
from store.importer.reading import EXTENSIONS, Format, Progress, check_utf8, detect_format
from store.importer.rejects import SHOWN_PROBLEMS, ImportResult

__all__ = [
    "EXTENSIONS",
    "SHOWN_PROBLEMS",
    "Format",
    "ImportResult",
    "Progress",
    "Returning",
    "check_utf8",
    "detect_format",
    "import_file",
]
