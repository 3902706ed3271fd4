"""``campaigns/pathways/*.yaml`` → compiled pathways, with every problem of every file
located (``path:line:col``), and the campaigns' ``audience.pathway`` references checked
against them.

Like the campaign references (``planning.references``), names are read from the documents
as written, so a campaign naming a key action is checked even when another key of the
pathway is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from audience.pathways import Pathway, PathwaySpec
from domain.campaign import Campaign
from nudgeflow.errors import CampaignFileError, FileProblem
from planning.problem_text import suggest
from planning.sourcefile import KeyPath, SourceFile, load_with_unique_ids, validate_source

PATHWAYS_DIR = "pathways"


def pathway_files(campaigns_dir: Path) -> list[Path]:
    folder = campaigns_dir / PATHWAYS_DIR
    if not folder.is_dir():
        return []
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


@dataclass(frozen=True)
class PathwayFiles:
    pathways: tuple[Pathway, ...]  # the files that are valid, in file order
    documents: tuple[SourceFile, ...]  # every file that parsed as YAML
    files: tuple[Path, ...]
    problems: tuple[FileProblem, ...]

    def written(self) -> dict[str, set[str] | None]:
        """Pathway id → the key action ids its document gives (``None``: unreadable)."""
        found: dict[str, set[str] | None] = {}
        for source in self.documents:
            data = source.data if isinstance(source.data, dict) else {}
            pathway_id = data.get("id")
            if not isinstance(pathway_id, str):
                continue
            actions = data.get("key_actions")
            ids = (
                [a.get("id") for a in actions if isinstance(a, dict)]
                if isinstance(actions, list)
                else None
            )
            found[pathway_id] = {i for i in ids if isinstance(i, str)} if ids is not None else None
        return found


def _stage_uses(source: SourceFile) -> Iterator[tuple[KeyPath, str]]:
    data = source.data if isinstance(source.data, dict) else {}
    for key in ("start", "end"):
        step = data.get(key)
        if isinstance(step, dict) and isinstance(step.get("stage"), str):
            yield (key, "stage"), step["stage"]
    actions = data.get("key_actions")
    for index, action in enumerate(actions if isinstance(actions, list) else []):
        if isinstance(action, dict) and isinstance(action.get("stage"), str):
            yield ("key_actions", index, "stage"), action["stage"]


def read_pathway_files(campaigns_dir: Path, stages: tuple[str, ...] | None) -> PathwayFiles:
    """Read every pathway file, collecting every problem. ``stages`` are the lifecycle's
    stage ids, lowest first (``None``: the lifecycle is unreadable; stage names are then not
    checked, and only the pathways without stage steps compile)."""
    problems: list[FileProblem] = []
    pathways: list[Pathway] = []
    documents: list[SourceFile] = []
    files = pathway_files(campaigns_dir)
    for path, source, duplicate in load_with_unique_ids(files, "pathway", problems):
        documents.append(source)
        unknown = [
            source.problem(key, f"unknown stage '{name}'{suggest(name, stages or ())}")
            for key, name in _stage_uses(source)
            if stages is not None and name not in stages
        ]
        problems.extend(unknown)
        try:
            spec = validate_source(source, PathwaySpec)
        except CampaignFileError as exc:
            problems.extend(exc.problems)
            continue
        if not duplicate and not unknown and (stages is not None or not _has_stage(spec)):
            pathways.append(spec.compile(stages or (), str(path)))
    return PathwayFiles(tuple(pathways), tuple(documents), tuple(files), tuple(problems))


def _has_stage(spec: PathwaySpec) -> bool:
    steps = [spec.start, spec.end, *spec.key_actions]
    return any(step.stage is not None for step in steps)


def _names(value: Any, key: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield (*key, index), item
    elif isinstance(value, str):
        yield key, value


def target_problems(campaigns: list[SourceFile], found: PathwayFiles) -> list[FileProblem]:
    """Campaign audiences naming an unknown pathway, or a key action it does not have."""
    known = found.written()
    problems = []
    for source in campaigns:
        data = source.data if isinstance(source.data, dict) else {}
        audience = data.get("audience")
        target = audience.get("pathway") if isinstance(audience, dict) else None
        if not isinstance(target, dict) or not isinstance(target.get("id"), str):
            continue
        here: KeyPath = ("audience", "pathway")
        pathway_id = target["id"]
        if pathway_id not in known:
            names = tuple(known)
            where = f" in {PATHWAYS_DIR}/" if names else f"; {PATHWAYS_DIR}/ has no pathway files"
            message = f"unknown pathway '{pathway_id}'{suggest(pathway_id, names)}{where}"
            problems.append(source.problem((*here, "id"), message))
            continue
        actions = known[pathway_id]
        if actions is None:
            continue
        for field in ("done", "not_done"):
            for key, name in _names(target.get(field), (*here, field)):
                if name not in actions:
                    hint = suggest(name, tuple(sorted(actions)))
                    message = f"pathway '{pathway_id}' has no key action '{name}'{hint}"
                    problems.append(source.problem(key, message))
    return problems


def with_pathways(campaign: Campaign, pathways: tuple[Pathway, ...]) -> Campaign:
    """The campaign with its audience's pathway target resolved to the pathway."""
    target = campaign.audience.pathway
    if target is None:
        return campaign
    by_id = {p.id: p for p in pathways}
    resolved = replace(target, pathway=by_id[target.pathway_id])
    return replace(campaign, audience=replace(campaign.audience, pathway=resolved))
