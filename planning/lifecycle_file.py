"""``campaigns/lifecycle.yaml`` → ``Lifecycle``, with every problem located in the file."""

from __future__ import annotations

from pathlib import Path

from audience.lifecycle import Lifecycle, LifecycleSpec
from planning.sourcefile import load_yaml, validate_source

LIFECYCLE_FILE = "lifecycle.yaml"


def load_lifecycle(campaigns_dir: Path) -> Lifecycle:
    """Read and compile the lifecycle of a campaigns folder; raise ``CampaignFileError``."""
    source = load_yaml(campaigns_dir / LIFECYCLE_FILE)
    return validate_source(source, LifecycleSpec).compile()
