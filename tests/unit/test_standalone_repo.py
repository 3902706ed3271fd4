"""The repository stands on its own: no tracked file reads or cites material that people
who clone it do not have (a sibling ``shared`` folder, an old design brief)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Spelled in pieces so that this file does not cite them itself.
ABSENT = (b".." + b"/shared", b"DESIGN" + b".md")
UNTRACKED = {".git", ".venv", "var", "build", "__pycache__", ".hypothesis"}


def _tracked_files() -> list[Path] | None:
    try:
        result = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [name for name in result.stdout.decode().split("\0") if name]
    return [ROOT / name for name in names] or None


def _walked_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        # Pruned in place, so that os.walk never enters the virtualenv or the caches.
        dirs[:] = sorted(
            d for d in dirs if d not in UNTRACKED and not d.endswith((".egg-info", "_cache"))
        )
        for name in sorted(set(files) - UNTRACKED):
            yield Path(folder, name)


def test_no_file_reads_or_cites_what_a_clone_lacks() -> None:
    files = _tracked_files()
    if files is None:
        files = list(_walked_files())
    if not files:
        pytest.skip("neither a git checkout nor a source tree to walk")
    found = []
    for path in files:
        if not path.is_file():  # tracked, but deleted in the work tree
            continue
        content = path.read_bytes()
        for needle in ABSENT:
            for number, line in enumerate(content.splitlines(), start=1):
                if needle in line:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {needle.decode()}")
    assert found == []
