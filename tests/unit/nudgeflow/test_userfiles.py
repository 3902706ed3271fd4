"""``not_a_file``: what a path given as a file turned out to be, found without opening it
(opening a FIFO for reading would wait for a writer)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from nudgeflow.userfiles import not_a_file


def test_a_regular_file_and_a_link_to_one_are_files(tmp_path: Path) -> None:
    (tmp_path / "members.csv").write_text("member_id\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "members.csv")
    assert not_a_file(tmp_path / "members.csv") is None
    assert not_a_file(tmp_path / "link.csv") is None


def test_what_is_not_a_file_is_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "plain").write_text("")
    assert not_a_file(tmp_path / "fifo.csv") == (
        "is a FIFO (named pipe), not a file: reading it would wait for a writer"
    )
    assert not_a_file(tmp_path / "folder.csv") == "is a directory, not a file"
    assert not_a_file(tmp_path / "absent.csv") == "no such file"
    assert not_a_file(tmp_path / "plain" / "x.csv") == (
        "no such file (a part of its path is not a directory)"
    )
    assert not_a_file(Path("/dev/null")) == "is a device, not a file"


def test_a_socket_is_not_a_file(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s"))
        assert not_a_file(tmp_path / "s") == "is a socket, not a file"
