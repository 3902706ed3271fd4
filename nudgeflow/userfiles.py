"""What a path given as a file to read turned out to be, when it is not one.

Import files, shipping files, campaign files and templates are named by people, and a name
can point at a directory, a FIFO or a device. Opening a FIFO for reading waits until
something writes to it (possibly forever), a directory cannot be read at all, and a device
or a FIFO cannot be read twice (an import reads its file twice). So the readers ask
``not_a_file`` first and report its answer as one line, before opening anything.
"""

from __future__ import annotations

import stat
from pathlib import Path

# What each kind of non-file is, in words, by the test that recognises it.
_KINDS = (
    (stat.S_ISDIR, "is a directory, not a file"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a file: reading it would wait for a writer"),
    (stat.S_ISSOCK, "is a socket, not a file"),
    (stat.S_ISCHR, "is a device, not a file"),
    (stat.S_ISBLK, "is a device, not a file"),
)


def not_a_file(path: Path) -> str | None:
    """``None`` when ``path`` is a regular file (or a link to one); otherwise why it cannot
    be read as one: ``no such file``, ``is a directory, not a file``, ``is a FIFO …``."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file (a part of its path is not a directory)"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return None
    for test, words in _KINDS:
        if test(mode):
            return words
    return "is not a regular file"
