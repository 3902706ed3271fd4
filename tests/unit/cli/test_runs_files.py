"""``nudgeflow runs``' files column: the digest's first 12 hex digits, the commit's first 8,
``+`` for uncommitted changes."""

from __future__ import annotations

import pytest

from cli.actions import format_files

DIGEST = "3f2a9c01b7de" + "0" * 52
COMMIT = "9e1c2d3a" + "1" * 32


@pytest.mark.parametrize(
    ("digest", "commit", "dirty", "shown"),
    [
        (None, None, None, ""),  # a run from before the files were recorded
        (DIGEST, None, None, "3f2a9c01b7de"),  # not in a git checkout
        (DIGEST, COMMIT, False, "3f2a9c01b7de @ 9e1c2d3a"),
        (DIGEST, COMMIT, True, "3f2a9c01b7de @ 9e1c2d3a+"),
    ],
)
def test_files_column(
    digest: str | None, commit: str | None, dirty: bool | None, shown: str
) -> None:
    assert format_files(digest, commit, dirty) == shown
