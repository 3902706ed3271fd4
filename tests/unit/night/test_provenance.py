"""The content hash of the campaign folder and templates, and the git commit: the same
bytes give the same digest, any change of a file's bytes or path changes it, and git is
optional."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from night.provenance import fingerprint, folder_hash, git_state
from planning.campaign_files import load_campaign_set

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    campaigns, templates = tmp_path / "campaigns", tmp_path / "templates"
    shutil.copytree(ROOT / "campaigns", campaigns)
    shutil.copytree(ROOT / "templates/email", templates)
    return campaigns, templates


def test_the_digest_depends_on_bytes_and_paths_only(folders: tuple[Path, Path]) -> None:
    campaigns, templates = folders
    first = fingerprint(campaigns, templates, load_campaign_set(campaigns))
    # New file times, same bytes: the same digest.
    for path in campaigns.rglob("*"):
        os.utime(path, (1, 1))
    again = fingerprint(campaigns, templates, load_campaign_set(campaigns))
    assert again == first
    assert len(first.digest) == 64
    path = campaigns / "birthday-card.yaml"
    assert (
        first.files["campaigns/birthday-card.yaml"] == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert first.campaign_files["birthday-card"] == "campaigns/birthday-card.yaml"
    assert "templates/birthday_card.html.j2" in first.files

    path.write_bytes(path.read_bytes() + b"\n")  # one more byte in one campaign
    changed = fingerprint(campaigns, templates, load_campaign_set(campaigns))
    assert changed.digest != first.digest
    assert changed.templates_sha256 == first.templates_sha256

    (templates / "birthday_card.txt.j2").rename(templates / "birthday_card2.txt.j2")
    renamed = folder_hash(templates, "templates")[0]
    assert renamed != first.templates_sha256


def test_a_missing_folder_hashes_as_empty(tmp_path: Path) -> None:
    assert folder_hash(tmp_path / "nope", "templates") == (hashlib.sha256().hexdigest(), {})


def test_no_git_checkout_or_no_git_at_all_is_tolerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_state(tmp_path) == (None, None)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    assert git_state(ROOT / "campaigns") == (None, None)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_commit_and_uncommitted_changes_are_recorded(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    campaigns, templates = folders
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(tmp_path), *args], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    git("init", "-q")
    git("add", "campaigns")
    git("commit", "-q", "-m", "campaigns")
    head = git("rev-parse", "HEAD")
    clean = fingerprint(campaigns, templates, load_campaign_set(campaigns))
    assert (clean.git_commit, clean.git_dirty) == (head, False)
    (campaigns / "birthday-card.yaml").write_text(
        (campaigns / "birthday-card.yaml").read_text() + "\n"
    )
    dirty = fingerprint(campaigns, templates, load_campaign_set(campaigns))
    assert (dirty.git_commit, dirty.git_dirty) == (head, True)
