"""Pathways: a journey from a starting action through key actions to an ending action.

``PathwaySpec`` is the shape of ``campaigns/pathways/<id>.yaml``; ``Pathway`` is the
compiled value the report (``night.pathways``) and campaign audiences use. Every step of a
pathway is a *moment* a member reaches, written in the lifecycle's rule language:

* ``{stage: loyalist}``: the member entered that stage, or a higher one, for the first time
  (``stage_history``; a stage found by the very first refresh counts from that day);
* ``{events: {type: [...], min: 3}}``: the member's third event of those types.

The start is counted over the member's whole history. The key actions and the end are
counted from the start on: only events at or after the start instant, and stage entries on
or after the start's business day. ``explain_position`` is the pure reference of what
``store.pathways_sql`` computes for a campaign audience's ``pathway`` criterion.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from audience.fields import STRICT, Days, Identifier, OneOrMany
from audience.filespec import Broken, FileSpec

PURCHASE = "purchase"


class StepEventsSpec(FileSpec):
    """``events: {type: answer_posted, min: 1}``: the moment of the member's min-th event."""

    model_config = STRICT
    type: OneOrMany = Field(min_length=1)
    """The event type or types that count. Example: `type: [review_posted, referral_made]`."""
    min: int = Field(default=1, ge=1, le=1000)
    """The step is reached with the member's min-th such event, 1 to 1000 (default 1).
    Example: `min: 3`."""


class StepSpec(FileSpec):
    """A moment on a pathway: reaching a stage, or the min-th event of some types."""

    model_config = STRICT
    stage: Identifier | None = None
    """Reached when the member first enters this lifecycle stage or a higher one. Example:
    `stage: loyalist`."""
    events: StepEventsSpec | None = None
    """Reached with the member's min-th event of the types. Example:
    `events: {type: answer_posted, min: 1}`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if len(given & {"stage", "events"}) != 1:
            yield None, "give exactly one of stage (e.g. stage: loyalist) or events"


class KeyActionSpec(StepSpec):
    """A named key action with a measurable outcome."""

    id: Identifier
    """The key action's id, unique in the pathway; campaigns name it in
    `audience.pathway.done`. Example: `id: answered`."""
    name: str | None = Field(default=None, min_length=1)
    """A human name for reports (default: the id). Example:
    `name: Answered another member's question`."""


class IndicatorEventsSpec(FileSpec):
    model_config = STRICT
    type: OneOrMany = Field(min_length=1)
    """The event types counted. Example: `type: purchase`."""
    within: Days | None = None
    """Only events this recent (before the end of the as-of day) count; none: every
    event. Example: `within: 365d`."""


class RetentionSpec(FileSpec):
    model_config = STRICT
    within: Days
    """A member is retained when they had an event of the types this recently. Example:
    `within: 90d`."""
    type: OneOrMany = Field(default_factory=lambda: [PURCHASE], min_length=1)
    """The event types that count as activity (default purchase). Example:
    `type: [purchase, login]`."""


class IndicatorSpec(FileSpec):
    """A metric computed from events for members on the pathway and members not on it."""

    model_config = STRICT
    id: Identifier
    """The indicator's id, unique in the pathway. Example: `id: purchases`."""
    name: str | None = Field(default=None, min_length=1)
    """A human name for reports (default: the id). Example: `name: Purchases per member`."""
    events: IndicatorEventsSpec | None = None
    """Events per member: the average number of events of the types. Example:
    `events: {type: purchase, within: 365d}`."""
    retention: RetentionSpec | None = None
    """The share of members with an event of the types within the period. Example:
    `retention: {within: 90d}`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if len(given & {"events", "retention"}) != 1:
            yield None, "give exactly one of events or retention"


def _unique(items: list[Any], what: str) -> list[Any]:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"{what} id {item.id!r} is used twice")
        seen.add(item.id)
    return items


class PathwaySpec(FileSpec):
    """One pathway file: campaigns/pathways/<id>.yaml."""

    model_config = STRICT
    id: Identifier
    """Unique across the pathway files; campaigns name it in `audience.pathway.id`. Example:
    `id: retention-to-advocacy`."""
    name: str = Field(min_length=1)
    """A human title for reports. Example: `name: Retention to advocacy`."""
    description: str | None = None
    """Free text. Example: `description: From a third purchase to speaking for us.`"""
    start: StepSpec
    """The starting action: members who reached it are on the pathway. Example:
    `start: {stage: loyalist}`."""
    key_actions: list[KeyActionSpec] = Field(min_length=1, max_length=20)
    """The key actions on the way, each a step with a measurable outcome (1 to 20).
    Example: `key_actions: [{id: answered, events: {type: answer_posted, min: 1}}]`."""
    end: StepSpec
    """The ending action: the member completed the pathway. Example:
    `end: {events: {type: [answer_posted, guest_post, review_posted], min: 3}}`."""
    target_impact: str = Field(min_length=1)
    """What the pathway is meant to achieve, in words. Example:
    `target_impact: Advocates who bring referrals`."""
    indicators: list[IndicatorSpec] = Field(default_factory=list, max_length=20)
    """Metrics computed from events, for members on the pathway against members not on
    it. Example: `indicators: [{id: purchases, events: {type: purchase}}]`."""

    @field_validator("key_actions")
    @classmethod
    def _unique_actions(cls, actions: list[KeyActionSpec]) -> list[KeyActionSpec]:
        return _unique(actions, "key action")

    @field_validator("indicators")
    @classmethod
    def _unique_indicators(cls, indicators: list[IndicatorSpec]) -> list[IndicatorSpec]:
        return _unique(indicators, "indicator")

    def compile(self, stage_order: tuple[str, ...], source: str = "") -> Pathway:
        """The pathway, with each stage step widened to the stage and those above it in
        ``stage_order`` (the lifecycle's stages, lowest first)."""
        return Pathway(
            id=self.id,
            name=self.name,
            source=source,
            start=_step(self.start, stage_order),
            key_actions=tuple(
                KeyAction(a.id, a.name or a.id, _step(a, stage_order)) for a in self.key_actions
            ),
            end=_step(self.end, stage_order),
            target_impact=self.target_impact,
            indicators=tuple(_indicator(i) for i in self.indicators),
        )


def _step(spec: StepSpec, stage_order: tuple[str, ...]) -> Step:
    if spec.stage is not None:
        at = stage_order.index(spec.stage) if spec.stage in stage_order else len(stage_order)
        return Step(stage=spec.stage, stages=(spec.stage, *stage_order[at + 1 :]))
    assert spec.events is not None
    return Step(types=tuple(spec.events.type), min=spec.events.min)


def _indicator(spec: IndicatorSpec) -> Indicator:
    name = spec.name or spec.id
    if spec.events is not None:
        return Indicator(spec.id, name, "events", tuple(spec.events.type), spec.events.within)
    assert spec.retention is not None
    r = spec.retention
    return Indicator(spec.id, name, "retention", tuple(r.type), r.within)


# --- compiled values --------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """Reaching one of ``stages`` (a stage step) or the ``min``-th event of ``types``."""

    stage: str | None = None  # as written
    stages: tuple[str, ...] = ()  # the stage and every stage above it
    types: tuple[str, ...] = ()
    min: int = 1

    def describe(self) -> str:
        if self.stage is not None:
            return f"reached stage {self.stage}"
        kinds = " or ".join(self.types)
        return f"{self.min} {kinds} event{'s' if self.min != 1 else ''}"


@dataclass(frozen=True)
class KeyAction:
    id: str
    name: str
    step: Step


@dataclass(frozen=True)
class Indicator:
    """``events``: events of ``types`` per member; ``retention``: the share of members with
    such an event. Both over the last ``within_days`` before the end of the as-of day
    (``None``: all time)."""

    id: str
    name: str
    kind: Literal["events", "retention"]
    types: tuple[str, ...]
    within_days: int | None


@dataclass(frozen=True)
class Pathway:
    id: str
    name: str
    source: str
    start: Step
    key_actions: tuple[KeyAction, ...]
    end: Step
    target_impact: str
    indicators: tuple[Indicator, ...] = ()

    @property
    def key_action_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.key_actions)

    def event_types(self) -> set[str]:
        steps = [self.start, self.end, *(a.step for a in self.key_actions)]
        return {t for s in steps for t in s.types} | {t for i in self.indicators for t in i.types}


# --- a campaign audience's position on a pathway -----------------------------------------


class PathwayTargetSpec(FileSpec):
    """``audience.pathway: {id: retention-to-advocacy, done: answered, not_done: guest-post}``"""

    model_config = STRICT
    id: Identifier
    """The pathway (a file in campaigns/pathways/): members who started it and have not
    reached its end. Example: `id: retention-to-advocacy`."""
    done: OneOrMany = Field(default_factory=list)
    """Key actions of the pathway the member has completed since starting it. Example:
    `done: answered`."""
    not_done: OneOrMany = Field(default_factory=list)
    """Key actions the member has not completed yet: the next step to point them at.
    Example: `not_done: guest-post`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        both = set(valid.get("done") or ()) & set(valid.get("not_done") or ())
        if both:
            yield None, f"key action {sorted(both)[0]!r} is in both done and not_done"

    def compile(self) -> PathwayTarget:
        return PathwayTarget(self.id, tuple(self.done), tuple(self.not_done))


@dataclass(frozen=True)
class PathwayTarget:
    """``audience.pathway``: members on the pathway (started, not yet at its end) who have
    done every key action of ``done`` and none of ``not_done``. ``pathway`` is resolved from
    ``pathway_id`` when the campaign set is loaded."""

    pathway_id: str
    done: tuple[str, ...] = ()
    not_done: tuple[str, ...] = ()
    pathway: Pathway | None = None


@dataclass(frozen=True)
class PathwayPosition:
    """Where one member stands on a pathway: instants (epoch seconds) or ``None``."""

    started_at: int | None
    done: frozenset[str]  # the key actions completed since the start
    ended_at: int | None


def explain_position(target: PathwayTarget, position: PathwayPosition) -> str | None:
    """``None`` when the member is at the targeted position, else why not, in words."""
    name = target.pathway_id
    if position.started_at is None:
        if target.pathway is None:
            return f"is not on pathway {name}"
        return f"is not on pathway {name} (it starts with: {target.pathway.start.describe()})"
    if position.ended_at is not None:
        return f"has already reached the end of pathway {name}"
    for action in target.done:
        if action not in position.done:
            return f"has not yet done key action {action} of pathway {name}"
    for action in target.not_done:
        if action in position.done:
            return f"has already done key action {action} of pathway {name}"
    return None
