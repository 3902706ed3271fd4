"""The pure parts of pathways: compiling a stage step to the stage and those above, and
``explain_position``, the reference of the ``audience.pathway`` criterion."""

from __future__ import annotations

from audience.pathways import (
    PathwayPosition,
    PathwaySpec,
    PathwayTarget,
    PathwayTargetSpec,
    explain_position,
)

SPEC = {
    "id": "climb",
    "name": "Climb",
    "start": {"stage": "loyalist"},
    "key_actions": [
        {"id": "a", "events": {"type": "answer_posted"}},
        {"id": "b", "events": {"type": ["guest_post", "talk_given"], "min": 2}},
    ],
    "end": {"stage": "advocate"},
    "target_impact": "Advocates",
}
PATHWAY = PathwaySpec.model_validate(SPEC).compile(("adopter", "loyalist", "advocate"))
TARGET = PathwayTarget("climb", ("a",), ("b",), PATHWAY)


def test_a_stage_step_is_the_stage_or_one_above() -> None:
    assert PATHWAY.start.stages == ("loyalist", "advocate")
    assert PATHWAY.end.stages == ("advocate",)
    assert PATHWAY.key_actions[1].step.describe() == "2 guest_post or talk_given events"
    assert PATHWAY.key_actions[0].step.min == 1  # min defaults to 1


def test_a_target_spec_compiles_one_or_many() -> None:
    spec = PathwayTargetSpec.model_validate({"id": "climb", "done": "a"})
    assert spec.compile() == PathwayTarget("climb", ("a",), ())


def test_explain_position_says_where_the_member_stands() -> None:
    def why(started: int | None, done: set[str], ended: int | None = None) -> str | None:
        return explain_position(TARGET, PathwayPosition(started, frozenset(done), ended))

    assert why(100, {"a"}) is None
    assert why(None, set()) == "is not on pathway climb (it starts with: reached stage loyalist)"
    assert why(100, {"a"}, 200) == "has already reached the end of pathway climb"
    assert why(100, set()) == "has not yet done key action a of pathway climb"
    assert why(100, {"a", "b"}) == "has already done key action b of pathway climb"
