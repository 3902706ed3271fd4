"""The lifecycle: ordered stages with rules, the engagement score, RFM segments.

``LifecycleSpec`` is the shape of ``campaigns/lifecycle.yaml``; ``Lifecycle`` is the
compiled value the refresh and the planner use. The functions at the bottom are the pure
reference for what the SQL refresh computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from audience.facts import EventFact, MemberFacts
from audience.fields import STRICT, Days, Identifier
from audience.filespec import Broken, FileSpec
from audience.rules import Rule, RuleSpec, event_types

SECONDS_PER_DAY = 86_400


class StageSpec(FileSpec):
    model_config = STRICT
    id: Identifier
    """The stage's id, used by campaigns' audience.stage. Example: `id: loyalist`."""
    name: str | None = None
    """A human name for reports (default: the id). Example: `name: Loyal customer`."""
    description: str | None = None
    """Free text. Example: `description: Three purchases in a year.`"""
    when: RuleSpec
    """The rule a member must meet to be in this stage (the highest stage that holds
    wins). Example: `when: {events: {type: purchase, min: 3, within: 365d}}`."""


class ScoringSpec(FileSpec):
    """Points per event type. Points must fade: ``expire_after`` drops them after a period,
    ``half_life`` halves them every period."""

    model_config = STRICT
    points: dict[str, float] = Field(min_length=1)
    """Points per event type. Example: `points: {purchase: 10, review_posted: 25}`."""
    expire_after: Days | None = None
    """Points count in full for this long, then drop (or give half_life). Example:
    `expire_after: 180d`."""
    half_life: Days | None = None
    """Points halve every period (or give expire_after). Example: `half_life: 90d`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if len(given & {"expire_after", "half_life"}) != 1:
            yield None, "give exactly one of expire_after or half_life: points must expire"


class SegmentSpec(FileSpec):
    """Ranges of 1–5 quintile scores; a missing letter matches any score."""

    model_config = STRICT
    r: tuple[int, int] | None = None
    """Recency score range, 1 (longest ago) to 5 (most recent). Example: `r: [4, 5]`."""
    f: tuple[int, int] | None = None
    """Frequency score range, 1 (fewest purchases) to 5 (most). Example: `f: [3, 5]`."""
    m: tuple[int, int] | None = None
    """Monetary score range, 1 (least spent) to 5 (most). Example: `m: [4, 5]`."""

    @field_validator("r", "f", "m")
    @classmethod
    def _quintiles(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None:
            low, high = value
            if not 1 <= low <= high <= 5:
                raise ValueError(f"expected [low, high] with 1 ≤ low ≤ high ≤ 5, got {list(value)}")
        return value

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given & {"r", "f", "m"}:
            yield None, "give at least one of r, f or m"


class RfmSpec(FileSpec):
    model_config = STRICT
    window: Days = 365
    """The purchases the RFM scores are computed over. Example: `window: 365d`."""
    segments: dict[Identifier, SegmentSpec] = Field(default_factory=dict)
    """Named segments, first match wins (in file order). Example:
    `segments: {champions: {r: [4, 5], f: [4, 5], m: [4, 5]}}`."""


class LifecycleSpec(FileSpec):
    model_config = STRICT
    name: str | None = None
    """The lifecycle's name. Example: `name: The retention ladder`."""
    description: str | None = None
    """Free text. Example: `description: adopter → loyalist → advocate`."""
    stages: list[StageSpec] = Field(min_length=1)
    """The stages, lowest first; a member is in the highest whose rule holds. Example:
    `stages: [{id: adopter, when: {events: {type: purchase, min: 1}}}]`."""
    scoring: ScoringSpec
    """The engagement score: points per event type that fade. Example:
    `scoring: {points: {purchase: 10}, expire_after: 180d}`."""
    rfm: RfmSpec = RfmSpec()
    """Recency, frequency and monetary scores and named segments. Example:
    `rfm: {window: 365d, segments: {champions: {r: [4, 5], f: [4, 5]}}}`."""

    @field_validator("stages")
    @classmethod
    def _unique_ids(cls, stages: list[StageSpec]) -> list[StageSpec]:
        seen: set[str] = set()
        for stage in stages:
            if stage.id in seen:
                raise ValueError(f"stage id {stage.id!r} is used twice")
            seen.add(stage.id)
        return stages

    def compile(self) -> Lifecycle:
        return Lifecycle(
            stages=tuple(Stage(s.id, s.name or s.id, s.when.to_rule()) for s in self.stages),
            scoring=Scoring(
                tuple(sorted(self.scoring.points.items())),
                self.scoring.expire_after,
                self.scoring.half_life,
            ),
            rfm=Rfm(
                self.rfm.window,
                tuple(Segment(n, s.r, s.f, s.m) for n, s in self.rfm.segments.items()),
            ),
        )


@dataclass(frozen=True)
class Stage:
    id: str
    name: str
    rule: Rule


@dataclass(frozen=True)
class Scoring:
    points: tuple[tuple[str, float], ...]
    expire_after_days: int | None
    half_life_days: int | None


@dataclass(frozen=True)
class Segment:
    name: str
    r: tuple[int, int] | None
    f: tuple[int, int] | None
    m: tuple[int, int] | None


@dataclass(frozen=True)
class Rfm:
    window_days: int
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Lifecycle:
    stages: tuple[Stage, ...]  # low → high
    scoring: Scoring
    rfm: Rfm

    @property
    def stage_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stages)

    @property
    def segment_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.rfm.segments)

    def event_types(self) -> set[str]:
        types = {t for t, _ in self.scoring.points}
        for stage in self.stages:
            types |= event_types(stage.rule)
        return types


# --- the pure reference of the refresh --------------------------------------------------


def stage_of(lifecycle: Lifecycle, member: MemberFacts, as_of_end: int) -> str | None:
    """The highest stage whose rule holds, or ``None``."""
    from audience.evaluate import evaluate

    for stage in reversed(lifecycle.stages):
        if evaluate(stage.rule, member, as_of_end):
            return stage.id
    return None


def engagement_score(scoring: Scoring, events: Iterable[EventFact], as_of_end: int) -> float:
    """Points of past events, expired or decayed as of ``as_of_end``."""
    points = dict(scoring.points)
    total = 0.0
    for event in events:
        value = points.get(event.type)
        if value is None or event.occurred_at >= as_of_end:
            continue
        age = as_of_end - event.occurred_at
        if scoring.expire_after_days is not None:
            if age <= scoring.expire_after_days * SECONDS_PER_DAY:
                total += value
        elif scoring.half_life_days is not None:
            total += value * 0.5 ** (age / (SECONDS_PER_DAY * scoring.half_life_days))
    return total


def segment_of(rfm: Rfm, r: int | None, f: int | None, m: int | None) -> str | None:
    """The first segment (in file order) whose ranges hold all three scores."""
    if r is None or f is None or m is None:
        return None
    for segment in rfm.segments:
        if all(
            bounds is None or bounds[0] <= score <= bounds[1]
            for bounds, score in ((segment.r, r), (segment.f, f), (segment.m, m))
        ):
            return segment.name
    return None
