"""The campaigns folder → compiled campaigns and policy, with every problem of every file
reported at once (a compiler, not a first-error-wins parser)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from audience.lifecycle import Lifecycle, LifecycleSpec
from domain.campaign import Campaign, Policy
from nudgeflow.errors import CampaignFileError, FileProblem
from planning.campaign_spec import CampaignSpec, PolicySpec
from planning.compile import compile_campaign, compile_policy
from planning.lifecycle_file import LIFECYCLE_FILE
from planning.sourcefile import KeyPath, SourceFile, load_yaml, validate_source

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


def _check_names(source: SourceFile, lifecycle: Lifecycle) -> list[FileProblem]:
    """Unknown stages and RFM segments, read from the document as written so that they are
    reported even when other keys of the file are wrong."""
    problems: list[FileProblem] = []
    audience = source.data.get("audience") if isinstance(source.data, dict) else None
    if not isinstance(audience, dict):
        return problems
    stages = audience.get("stage")
    listed = stages if isinstance(stages, list) else [stages]
    for index, stage in enumerate(listed):
        if isinstance(stage, str) and stage not in lifecycle.stage_ids:
            key = (
                ("audience", "stage", index) if isinstance(stages, list) else ("audience", "stage")
            )
            problems.append(
                source.problem(
                    key, f"unknown stage '{stage}'{_suggest(stage, lifecycle.stage_ids)}"
                )
            )
    rfm = audience.get("rfm")
    segments = rfm.get("segment") if isinstance(rfm, dict) else None
    listed = segments if isinstance(segments, list) else [segments]
    for index, segment in enumerate(listed):
        if isinstance(segment, str) and segment not in lifecycle.segment_names:
            where: KeyPath = ("audience", "rfm", "segment")
            problems.append(
                source.problem(
                    (*where, index) if isinstance(segments, list) else where,
                    f"unknown RFM segment '{segment}'{_suggest(segment, lifecycle.segment_names)}",
                )
            )
    return problems


def load_policy(campaigns_dir: Path) -> Policy:
    path = campaigns_dir / POLICY_FILE
    if not path.exists():
        return compile_policy(PolicySpec())
    return compile_policy(validate_source(load_yaml(path), PolicySpec))


@dataclass(frozen=True)
class CampaignFiles:
    """Whatever could be read from a campaigns folder, and every problem found on the way."""

    lifecycle: Lifecycle | None
    lifecycle_source: SourceFile | None
    policy: Policy | None
    campaigns: tuple[Campaign, ...]  # the files that parsed, in file order
    sources: dict[str, SourceFile]  # campaign id → its parsed file
    files: tuple[Path, ...]  # every campaign file, parsed or not
    problems: tuple[FileProblem, ...]


def read_campaign_files(campaigns_dir: Path) -> CampaignFiles:
    """Read the lifecycle, the policy and every campaign, keeping what parses and collecting
    every problem of every file (``validate`` checks templates of the campaigns that parse
    even when other files are broken)."""
    problems: list[FileProblem] = []
    lifecycle: Lifecycle | None = None
    lifecycle_source: SourceFile | None = None
    policy: Policy | None = None
    try:
        lifecycle_source = load_yaml(campaigns_dir / LIFECYCLE_FILE)
        lifecycle = validate_source(lifecycle_source, LifecycleSpec).compile()
    except CampaignFileError as exc:
        problems.extend(exc.problems)
    try:
        policy = load_policy(campaigns_dir)
    except CampaignFileError as exc:
        problems.extend(exc.problems)

    campaigns: list[Campaign] = []
    sources: dict[str, SourceFile] = {}
    files = campaign_files(campaigns_dir)
    for path in files:
        try:
            source = load_yaml(path)
        except CampaignFileError as exc:
            problems.extend(exc.problems)
            continue
        names = _check_names(source, lifecycle) if lifecycle is not None else []
        try:
            spec = validate_source(source, CampaignSpec)
        except CampaignFileError as exc:
            problems.extend(sorted([*exc.problems, *names], key=lambda p: (p.line, p.column)))
            continue
        if spec.id in sources:
            other = sources[spec.id].path
            problems.append(
                source.problem(("id",), f"campaign id '{spec.id}' is also used by {other}")
            )
            continue
        problems.extend(names)
        sources[spec.id] = source
        campaigns.append(compile_campaign(spec, str(path)))
    return CampaignFiles(
        lifecycle,
        lifecycle_source,
        policy,
        tuple(campaigns),
        sources,
        tuple(files),
        tuple(problems),
    )


def load_campaign_set(campaigns_dir: Path) -> CampaignSet:
    """Read the lifecycle, the policy and every campaign; raise ``CampaignFileError`` listing
    every problem of every file."""
    found = read_campaign_files(campaigns_dir)
    if found.problems:
        raise CampaignFileError(list(found.problems))
    assert found.lifecycle is not None and found.policy is not None
    campaigns = sorted(found.campaigns, key=lambda c: (-c.priority, c.id))
    return CampaignSet(found.lifecycle, found.policy, tuple(campaigns), found.sources)
