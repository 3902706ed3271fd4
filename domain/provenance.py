"""The files a run works from, by content (``night.provenance`` computes it, ``store.sources``
keeps it, runs and actions carry its ``digest``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Provenance:
    """What a run's campaign set and templates were, by content."""

    digest: str  # over both folders: what runs and actions carry
    campaigns_sha256: str
    templates_sha256: str
    git_commit: str | None  # HEAD of the checkout holding the campaign folder, if any
    git_dirty: bool | None  # the campaign folder had uncommitted changes (None: no git)
    files: dict[str, str] = field(default_factory=dict)  # "campaigns/x.yaml" → sha256
    campaign_files: dict[str, str] = field(default_factory=dict)  # campaign id → file key

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "campaigns_sha256": self.campaigns_sha256,
            "templates_sha256": self.templates_sha256,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "files": dict(self.files),
            "campaign_files": dict(self.campaign_files),
        }
