"""The campaigns folder → compiled campaigns and policy, with every problem of every file
reported at once (a compiler, not a first-error-wins parser)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from audience.lifecycle import Lifecycle
from nudgeflow.errors import CampaignFileError, FileProblem
from planning.campaign import Campaign, Policy, compile_campaign, compile_policy
from planning.campaign_spec import CampaignSpec, PolicySpec
from planning.lifecycle_file import LIFECYCLE_FILE, load_lifecycle
from planning.sourcefile import SourceFile, load_yaml, validate_source

POLICY_FILE = "policy.yaml"


@dataclass(frozen=True)
class CampaignSet:
    lifecycle: Lifecycle
    policy: Policy
    campaigns: tuple[Campaign, ...]  # every file, enabled or not, in priority order
    sources: dict[str, SourceFile]  # campaign id → its parsed file (for later checks)

    @property
    def enabled(self) -> tuple[Campaign, ...]:
        return tuple(c for c in self.campaigns if c.enabled)


def campaign_files(campaigns_dir: Path) -> list[Path]:
    special = {LIFECYCLE_FILE, POLICY_FILE}
    files = [*campaigns_dir.glob("*.yaml"), *campaigns_dir.glob("*.yml")]
    return sorted(p for p in files if p.name not in special)


def _suggest(word: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_names(source: SourceFile, spec: CampaignSpec, lifecycle: Lifecycle) -> list[FileProblem]:
    problems = []
    stages = spec.audience.stage or []
    for index, stage in enumerate(stages):
        if stage not in lifecycle.stage_ids:
            key = (
                ("audience", "stage", index)
                if isinstance(source.data.get("audience", {}).get("stage"), list)
                else ("audience", "stage")
            )
            problems.append(
                source.problem(
                    key, f"unknown stage '{stage}'{_suggest(stage, lifecycle.stage_ids)}"
                )
            )
    segments = spec.audience.rfm.segment if spec.audience.rfm else []
    for segment in segments:
        if segment not in lifecycle.segment_names:
            problems.append(
                source.problem(
                    ("audience", "rfm", "segment"),
                    f"unknown RFM segment '{segment}'{_suggest(segment, lifecycle.segment_names)}",
                )
            )
    return problems


def load_policy(campaigns_dir: Path) -> Policy:
    path = campaigns_dir / POLICY_FILE
    if not path.exists():
        return compile_policy(PolicySpec())
    return compile_policy(validate_source(load_yaml(path), PolicySpec))


def load_campaign_set(campaigns_dir: Path) -> CampaignSet:
    """Read the lifecycle, the policy and every campaign; raise ``CampaignFileError`` listing
    every problem of every file."""
    problems: list[FileProblem] = []
    lifecycle: Lifecycle | None = None
    policy: Policy | None = None
    try:
        lifecycle = load_lifecycle(campaigns_dir)
    except CampaignFileError as exc:
        problems.extend(exc.problems)
    try:
        policy = load_policy(campaigns_dir)
    except CampaignFileError as exc:
        problems.extend(exc.problems)

    campaigns: list[Campaign] = []
    sources: dict[str, SourceFile] = {}
    for path in campaign_files(campaigns_dir):
        try:
            source = load_yaml(path)
            spec = validate_source(source, CampaignSpec)
        except CampaignFileError as exc:
            problems.extend(exc.problems)
            continue
        if spec.id in sources:
            other = sources[spec.id].path
            problems.append(
                source.problem(("id",), f"campaign id '{spec.id}' is also used by {other}")
            )
            continue
        if lifecycle is not None:
            problems.extend(_check_names(source, spec, lifecycle))
        sources[spec.id] = source
        campaigns.append(compile_campaign(spec, str(path)))

    if problems:
        raise CampaignFileError(problems)
    assert lifecycle is not None and policy is not None
    campaigns.sort(key=lambda c: (-c.priority, c.id))
    return CampaignSet(lifecycle, policy, tuple(campaigns), sources)
