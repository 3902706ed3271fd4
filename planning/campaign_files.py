"""The campaigns folder → compiled campaigns and policy, with every problem of every file
reported at once (a compiler, not a first-error-wins parser)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from audience.lifecycle import Lifecycle, LifecycleSpec
from audience.pathways import Pathway
from domain.campaign import Campaign, Policy
from nudgeflow.errors import CampaignFileError, FileProblem
from planning.campaign_spec import (
    AudienceSpec,
    CampaignSpec,
    EmailSpec,
    RewardSpec,
    TriggerSpec,
)
from planning.compile import compile_campaign, compile_policy
from planning.lifecycle_file import LIFECYCLE_FILE
from planning.pathway_files import read_pathway_files, target_problems, with_pathways
from planning.policy_spec import PolicySpec
from planning.references import KnownNames, category_problems, reference_problems
from planning.sourcefile import SourceFile, load_with_unique_ids, load_yaml, validate_source

Spec = TypeVar("Spec", bound=BaseModel)

POLICY_FILE = "policy.yaml"


@dataclass(frozen=True)
class CampaignSet:
    lifecycle: Lifecycle
    policy: Policy
    campaigns: tuple[Campaign, ...]  # every file, enabled or not, in priority order
    sources: dict[str, SourceFile]  # campaign id → its parsed file (for later checks)
    pathways: tuple[Pathway, ...] = ()  # campaigns/pathways/*.yaml, in file order

    @property
    def enabled(self) -> tuple[Campaign, ...]:
        return tuple(c for c in self.campaigns if c.enabled)


def campaign_files(campaigns_dir: Path) -> list[Path]:
    special = {LIFECYCLE_FILE, POLICY_FILE}
    files = [*campaigns_dir.glob("*.yaml"), *campaigns_dir.glob("*.yml")]
    return sorted(p for p in files if p.name not in special)


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
    # Files with errors whose email section is valid, as stand-in campaigns, so that their
    # templates are checked in the same run.
    stand_ins: tuple[tuple[Campaign, SourceFile], ...] = ()
    documents: tuple[SourceFile, ...] = ()  # every campaign file that parsed as YAML
    pathways: tuple[Pathway, ...] = ()  # the valid pathway files
    pathway_files: tuple[Path, ...] = ()


def _valid(model: type[Spec], value: Any) -> Spec | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


# What a stand-in's templates are rendered with when its own reward is invalid.
_SAMPLE_REWARD = {"kind": "credit", "amount": "10.00 USD", "expires_in": "30d"}


def stand_in_campaign(source: SourceFile) -> Campaign | None:
    """A campaign made of the valid sections of a file that has errors (an invalid audience
    counts as everyone, an invalid reward as a sample credit), or ``None`` without a valid
    ``email`` section: enough to render its templates against a sample member."""
    data = source.data if isinstance(source.data, dict) else {}
    email = _valid(EmailSpec, data.get("email"))
    if email is None:
        return None
    reward = None
    if "reward" in data:
        reward = _valid(RewardSpec, data["reward"]) or RewardSpec.model_validate(_SAMPLE_REWARD)
    written_id, name = data.get("id"), data.get("name")
    campaign_id = written_id if isinstance(written_id, str) else Path(source.path).stem
    spec = CampaignSpec.model_construct(
        id=campaign_id,
        name=name if isinstance(name, str) else campaign_id,
        audience=_valid(AudienceSpec, data.get("audience")) or AudienceSpec.model_construct(),
        trigger=TriggerSpec.model_construct(on="birthday"),
        reward=reward,
        email=email,
    )
    return compile_campaign(spec, source.path)


def _lifecycle(
    campaigns_dir: Path, problems: list[FileProblem]
) -> tuple[Lifecycle | None, SourceFile | None, KnownNames | None]:
    """The lifecycle, its document and the names it gives (read from the document when
    the lifecycle has errors, so the campaigns are still checked against its stages)."""
    try:
        source = load_yaml(campaigns_dir / LIFECYCLE_FILE)
    except CampaignFileError as exc:
        problems.extend(exc.problems)
        return None, None, None
    try:
        lifecycle = validate_source(source, LifecycleSpec).compile()
    except CampaignFileError as exc:
        problems.extend(exc.problems)
        return None, source, KnownNames.written_in(source)
    return lifecycle, source, KnownNames.of(lifecycle)


def read_campaign_files(campaigns_dir: Path) -> CampaignFiles:
    """Read the lifecycle, the policy and every campaign, keeping what parses and collecting
    every problem of every file: a broken file never hides the problems of another, and
    the templates of a campaign with other errors are checked too (``stand_ins``)."""
    problems: list[FileProblem] = []
    lifecycle, lifecycle_source, known = _lifecycle(campaigns_dir, problems)
    policy: Policy | None = None
    try:
        policy = load_policy(campaigns_dir)
    except CampaignFileError as exc:
        problems.extend(exc.problems)

    campaigns: list[Campaign] = []
    sources: dict[str, SourceFile] = {}
    stand_ins: list[tuple[Campaign, SourceFile]] = []
    parsed: list[SourceFile] = []
    files = campaign_files(campaigns_dir)
    for path, source, duplicate in load_with_unique_ids(files, "campaign", problems):
        parsed.append(source)
        try:
            spec = validate_source(source, CampaignSpec)
        except CampaignFileError as exc:
            problems.extend(exc.problems)
            stand_in = None if duplicate else stand_in_campaign(source)
            if stand_in is not None:
                stand_ins.append((stand_in, source))
            continue
        if not duplicate:
            sources[spec.id] = source
            campaigns.append(compile_campaign(spec, str(path)))
    if known is not None:
        problems.extend(reference_problems(parsed, known))
    if policy is not None:
        problems.extend(category_problems(parsed, policy.categories))
        problems.extend(approval_problems(campaigns, sources, policy))
    stages = lifecycle.stage_ids if lifecycle is not None else known.stages if known else None
    pathways = read_pathway_files(campaigns_dir, stages)
    problems.extend(pathways.problems)
    problems.extend(target_problems(parsed, pathways))
    return CampaignFiles(
        lifecycle,
        lifecycle_source,
        policy,
        tuple(campaigns),
        sources,
        tuple(files),
        tuple(problems),
        tuple(stand_ins),
        tuple(parsed),
        pathways.pathways,
        pathways.files,
    )


def load_campaign_set(campaigns_dir: Path) -> CampaignSet:
    """Read the lifecycle, the policy and every campaign; raise ``CampaignFileError`` listing
    every problem of every file."""
    found = read_campaign_files(campaigns_dir)
    if found.problems:
        raise CampaignFileError(list(found.problems))
    assert found.lifecycle is not None and found.policy is not None
    order = found.lifecycle.stage_ids
    policy = found.policy
    campaigns = sorted(
        (
            with_approval(with_pathways(with_stage_order(c, order), found.pathways), policy)
            for c in found.campaigns
        ),
        key=lambda c: (-c.priority, c.id),
    )
    return CampaignSet(
        found.lifecycle, found.policy, tuple(campaigns), found.sources, found.pathways
    )


def with_approval(campaign: Campaign, policy: Policy) -> Campaign:
    """The campaign with policy.yaml's ``approval_above`` when it sets none of its own."""
    if campaign.approval_above is not None or campaign.reward is None:
        return campaign
    return replace(campaign, approval_above=policy.approval_above)


def approval_problems(
    campaigns: list[Campaign], sources: dict[str, SourceFile], policy: Policy
) -> list[FileProblem]:
    """A campaign that takes policy.yaml's ``approval_above`` must cost in its currency."""
    threshold = policy.approval_above
    problems = []
    for campaign in campaigns:
        cost = campaign.reward.cost if campaign.reward is not None else None
        if threshold is None or campaign.approval_above is not None or cost is None:
            continue
        if cost.currency != threshold.currency and campaign.id in sources:
            message = (
                f"the reward costs {cost.currency} but policy.yaml's approval_above is "
                f"{threshold}: give this campaign its own approval_above in {cost.currency}"
            )
            problems.append(sources[campaign.id].problem(("reward",), message))
    return problems


def with_stage_order(campaign: Campaign, order: tuple[str, ...]) -> Campaign:
    """The campaign with the lifecycle's stage order on its trigger, which says what a move
    up or down is for ``stage_entry``."""
    return replace(campaign, trigger=replace(campaign.trigger, stage_order=order))
