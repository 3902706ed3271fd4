"""The JSON Schemas for editors: one per kind of file, committed where the shipped files
point, every key described with an example, and reward and trigger keys limited by kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from planning.schemas import SCHEMAS, json_schema, schema_text
from planning.sourcefile import load_yaml

ROOT = Path(__file__).resolve().parents[3]
MODELINE = "# yaml-language-server: $schema="
SHIPPED = sorted(
    [
        *(ROOT / "campaigns").glob("*.yaml"),
        *(ROOT / "campaigns" / "pathways").glob("*.yaml"),
        *(ROOT / "examples").rglob("*.yaml"),
    ]
)


def _kind(path: Path) -> str:
    if path.parent.name == "pathways":
        return "pathway"
    if path.name == "lifecycle.yaml" or path.parent.name == "lifecycles":
        return "lifecycle"
    return "policy" if path.name == "policy.yaml" else "campaign"


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of every object in a schema, with where it is (the conditions that
    limit keys by kind, under ``allOf``, name keys described elsewhere)."""
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield f"{where}.{name}", prop
        for key, value in node.items():
            if key != "allOf":
                yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _properties(item, f"{where}[{index}]")


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_the_committed_schemas_are_the_generated_ones(kind: str) -> None:
    committed = (ROOT / f"docs/schema/{kind}.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(kind), f"run: nudgeflow schema {kind} --out ..."


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_key_is_described_with_an_example(kind: str) -> None:
    undescribed = [
        where
        for where, prop in _properties(json_schema(kind))
        if "Example: `" not in prop.get("description", "")
    ]
    assert undescribed == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file_names_its_schema_and_passes_it(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(MODELINE)
    target = (path.parent / first.removeprefix(MODELINE)).resolve()
    assert target == ROOT / f"docs/schema/{_kind(path)}.schema.json"

    validator = Draft202012Validator(json_schema(_kind(path)))
    errors = [e.message for e in validator.iter_errors(load_yaml(path).data)]
    assert errors == []


def _reward_errors(reward: dict[str, Any]) -> list[str]:
    schema = json_schema("campaign")
    validator = Draft202012Validator({**schema["$defs"]["RewardSpec"], "$defs": schema["$defs"]})
    return [e.message for e in validator.iter_errors(reward)]


@pytest.mark.parametrize(
    "reward",
    [
        {"kind": "discount", "percent_off": 15, "cost_estimate": "3.00 USD", "expires_in": "30d"},
        {"kind": "discount", "amount_off": "5.00 USD"},
        {"kind": "credit", "amount": "25.00 USD", "expires_in": "30d"},
        {"kind": "gift", "item": "a card", "item_cost": "2.00 USD"},
        {"kind": "vip_invite", "programme": "the Club"},
    ],
)
def test_rewards_that_fit_their_kind_pass(reward: dict[str, Any]) -> None:
    assert _reward_errors(reward) == []


@pytest.mark.parametrize(
    "reward",
    [
        {"kind": "discount", "percent_off": 15, "item": "a card"},
        {"kind": "discount", "percent_off": 15, "amount_off": "5.00 USD"},
        {"kind": "discount"},
        {"kind": "credit", "amount": "25.00 USD", "item_cost": "2.00 USD"},
        {"kind": "credit"},
        {"kind": "gift", "item": "a card"},
        {"kind": "vip_invite", "programme": "the Club", "amount": "5.00 USD"},
        {"kind": "credit", "amount": "-5.00 USD"},
    ],
)
def test_reward_keys_are_limited_by_kind(reward: dict[str, Any]) -> None:
    assert _reward_errors(reward) != []


@pytest.mark.parametrize(
    ("trigger", "ok"),
    [
        ({"on": "birthday"}, True),
        ({"on": "event", "types": ["review_posted"]}, True),
        ({"on": "inactivity", "for": "90d"}, True),
        ({"on": "birthday", "for": "90d"}, False),
        ({"on": "event"}, False),
        ({"on": "anniversary", "types": ["purchase"]}, False),
    ],
)
def test_trigger_keys_are_limited_by_on(trigger: dict[str, Any], ok: bool) -> None:
    schema = json_schema("campaign")
    validator = Draft202012Validator({**schema["$defs"]["TriggerSpec"], "$defs": schema["$defs"]})
    assert validator.is_valid(trigger) is ok
