"""Which files a run works from: the content hash of the campaign folder and of the
templates, and the git commit when the campaign folder is inside a git checkout.

A folder's hash is SHA-256 over its regular files sorted by relative path (POSIX, ``.git``
left out), each fed as ``path NUL size NUL bytes``; the run's ``digest`` is SHA-256 over
``campaigns NUL <hash> NUL templates NUL <hash>``. The same bytes give the same digest on
any machine, whatever the file times. ``store.sources`` keeps one row per digest with every
file's own SHA-256, and each run and action carries the digest, so an audit can show the
exact campaign file and templates behind any email or reward (docs/governance.md).
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from domain.provenance import Provenance
from planning.campaign_files import CampaignSet

GIT_TIMEOUT_SECONDS = 5.0


def folder_hash(folder: Path, prefix: str) -> tuple[str, dict[str, str]]:
    """(SHA-256 of ``folder``, ``prefix/relative path`` → each file's SHA-256). A folder
    that does not exist hashes as an empty one."""
    whole = hashlib.sha256()
    files: dict[str, str] = {}
    found = sorted(
        (path.relative_to(folder).as_posix(), path)
        for path in (folder.rglob("*") if folder.is_dir() else ())
        if path.is_file() and ".git" not in path.relative_to(folder).parts
    )
    for relative, path in found:
        data = path.read_bytes()
        whole.update(f"{relative}\0{len(data)}\0".encode())
        whole.update(data)
        files[f"{prefix}/{relative}"] = hashlib.sha256(data).hexdigest()
    return whole.hexdigest(), files


def _git(folder: Path, *args: str) -> str | None:
    """``git -C folder ARGS``'s output, or ``None`` without git, outside a checkout, or
    when git does not answer in time."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(folder: Path) -> tuple[str | None, bool | None]:
    """(HEAD's commit, whether ``folder`` has uncommitted changes), or (None, None)."""
    if not folder.is_dir():
        return None, None
    head = _git(folder, "rev-parse", "HEAD")
    if head is None or not head.strip():
        return None, None
    status = _git(folder, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    return head.strip(), None if status is None else bool(status.strip())


def fingerprint(campaigns_dir: Path, templates_dir: Path, campaign_set: CampaignSet) -> Provenance:
    """The provenance of a run on ``campaign_set`` read from ``campaigns_dir``."""
    campaigns_sha, files = folder_hash(campaigns_dir, "campaigns")
    templates_sha, template_files = folder_hash(templates_dir, "templates")
    files.update(template_files)
    digest = hashlib.sha256(f"campaigns\0{campaigns_sha}\0templates\0{templates_sha}".encode())
    commit, dirty = git_state(campaigns_dir)
    campaign_files = {}
    for campaign in campaign_set.campaigns:
        path = Path(campaign.source)
        try:
            relative = path.relative_to(campaigns_dir).as_posix()
        except ValueError:
            relative = path.name
        campaign_files[campaign.id] = f"campaigns/{relative}"
    return Provenance(
        digest.hexdigest(), campaigns_sha, templates_sha, commit, dirty, files, campaign_files
    )
