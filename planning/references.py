"""References from campaign files to the lifecycle (stages, RFM segments) and to the
policy (categories), checked across every file at once.

The names are read from the documents as written, so they are checked even when other
keys of a campaign, or of the lifecycle itself, are wrong: a lifecycle with a typo in a
rule still names its stages. Each unknown name is reported once, at its first use, with
where else it is used: a stage misspelt in the lifecycle is one problem, not one per
campaign that names the stage correctly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from audience.lifecycle import Lifecycle
from nudgeflow.errors import FileProblem
from planning.problem_text import suggest
from planning.sourcefile import KeyPath, SourceFile

_SHOWN_PLACES = 3  # other places named in full before "and N more"


@dataclass(frozen=True)
class KnownNames:
    """The stages and RFM segments a lifecycle defines."""

    stages: tuple[str, ...]
    segments: tuple[str, ...]

    @classmethod
    def of(cls, lifecycle: Lifecycle) -> KnownNames:
        return cls(lifecycle.stage_ids, lifecycle.segment_names)

    @classmethod
    def written_in(cls, source: SourceFile) -> KnownNames:
        """The names a lifecycle document gives, whether or not the rest of it is valid."""
        data = source.data if isinstance(source.data, dict) else {}
        stages = data.get("stages")
        listed = stages if isinstance(stages, list) else []
        ids = [stage.get("id") for stage in listed if isinstance(stage, dict)]
        rfm = data.get("rfm")
        segments = rfm.get("segments") if isinstance(rfm, dict) else None
        names = list(segments) if isinstance(segments, dict) else []
        return cls(
            tuple(i for i in ids if isinstance(i, str)),
            tuple(n for n in names if isinstance(n, str)),
        )


@dataclass(frozen=True)
class _Use:
    source: SourceFile
    key: KeyPath
    kind: str  # "stage", "RFM segment" or "category"
    name: str


def _listed(value: Any, key: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield (*key, index), item
    else:
        yield key, value


def _uses(source: SourceFile) -> Iterator[_Use]:
    """The stages and segments a campaign's audience names, as written."""
    data = source.data if isinstance(source.data, dict) else {}
    audience = data.get("audience")
    if not isinstance(audience, dict):
        return
    for key, name in _listed(audience.get("stage"), ("audience", "stage")):
        if isinstance(name, str):
            yield _Use(source, key, "stage", name)
    rfm = audience.get("rfm")
    if isinstance(rfm, dict):
        for key, name in _listed(rfm.get("segment"), ("audience", "rfm", "segment")):
            if isinstance(name, str):
                yield _Use(source, key, "RFM segment", name)


def _elsewhere(others: list[FileProblem]) -> str:
    if not others:
        return ""
    shown = ", ".join(f"{p.path}:{p.line}:{p.column}" for p in others[:_SHOWN_PLACES])
    more = len(others) - _SHOWN_PLACES
    tail = f" and {more} more" if more > 0 else ""
    places = "place" if len(others) == 1 else "places"
    return f"; also named in {len(others)} other {places}: {shown}{tail}"


def reference_problems(sources: list[SourceFile], known: KnownNames) -> list[FileProblem]:
    """One problem per unknown stage or segment name, at its first use in file order."""
    return _unknown(
        [use for source in sources for use in _uses(source)],
        lambda kind: known.stages if kind == "stage" else known.segments,
    )


def _category_uses(source: SourceFile) -> Iterator[_Use]:
    data = source.data if isinstance(source.data, dict) else {}
    category = data.get("category")
    if isinstance(category, str):
        yield _Use(source, ("category",), "category", category)


def category_problems(sources: list[SourceFile], categories: tuple[str, ...]) -> list[FileProblem]:
    """One problem per category the policy does not list, at its first use in file order."""
    problems = _unknown(
        [use for source in sources for use in _category_uses(source)], lambda _: categories
    )
    if not categories:
        hint = "; policy.yaml lists no categories (add them under categories:)"
        problems = [replace(p, message=p.message + hint) for p in problems]
    return problems


def _unknown(uses: list[_Use], names_of: Callable[[str], tuple[str, ...]]) -> list[FileProblem]:
    found: dict[tuple[str, str], list[FileProblem]] = {}
    for use in uses:
        if use.name not in names_of(use.kind):
            where = use.source.problem(use.key, "")
            found.setdefault((use.kind, use.name), []).append(where)
    problems = []
    for (kind, name), places in found.items():
        first, *others = sorted(places, key=lambda p: (p.path, p.line, p.column))
        names = names_of(kind)
        message = f"unknown {kind} '{name}'{suggest(name, names)}{_elsewhere(others)}"
        problems.append(FileProblem(first.path, first.line, first.column, first.key, message))
    return problems
