"""The JSON Schemas editors autocomplete and check the user files with, generated from the
specs: campaign files, ``lifecycle.yaml``, ``policy.yaml`` and pathway files.

Every key's description is its docstring in the spec (what it means, and an example). On
top of what pydantic generates, the reward's keys are limited by its ``kind`` and the
trigger's by its ``on`` (``if``/``then`` with ``propertyNames``), so an editor flags
``item`` on a discount as ``validate`` does. ``nudgeflow schema`` prints them; the copies in
``docs/schema/`` are what the shipped files point to (a test keeps them equal).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from audience.lifecycle import LifecycleSpec
from audience.pathways import PathwaySpec
from planning.campaign_spec import REWARD_KEYS, TRIGGER_KEYS, CampaignSpec
from planning.policy_spec import PolicySpec

SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = "docs/schema"

# kind → (spec, title, description)
SCHEMAS: dict[str, tuple[type[BaseModel], str, str]] = {
    "campaign": (
        CampaignSpec,
        "nudgeflow campaign file",
        "One campaign: campaigns/<id>.yaml (see docs/campaigns.md).",
    ),
    "lifecycle": (
        LifecycleSpec,
        "nudgeflow lifecycle",
        "The stages, the engagement score and the RFM segments: campaigns/lifecycle.yaml "
        "(see docs/data-and-lifecycles.md).",
    ),
    "policy": (
        PolicySpec,
        "nudgeflow policy",
        "Guards for every campaign: campaigns/policy.yaml (see docs/campaigns.md).",
    ),
    "pathway": (
        PathwaySpec,
        "nudgeflow pathway",
        "A pathway from a starting action through key actions to an ending action: "
        "campaigns/pathways/<id>.yaml (see docs/pathways.md).",
    ),
}

# Keys a reward of each kind must have (the rest of its rules are in RewardSpec.check).
_REWARD_REQUIRED: dict[str, list[str]] = {
    "discount": [],
    "credit": ["amount"],
    "gift": ["item", "item_cost"],
    "vip_invite": ["programme"],
}
_TRIGGER_REQUIRED: dict[str, list[str]] = {"event": ["types"], "inactivity": ["for"]}


def _when(key: str, value: str, allowed: set[str], required: list[str]) -> dict[str, Any]:
    then: dict[str, Any] = {"propertyNames": {"enum": sorted({key, *allowed})}}
    if required:
        then["required"] = required
    return {"if": {"properties": {key: {"const": value}}, "required": [key]}, "then": then}


def _reward_rules() -> list[dict[str, Any]]:
    rules = [
        _when("kind", kind, keys, _REWARD_REQUIRED[kind]) for kind, keys in REWARD_KEYS.items()
    ]
    # A discount is a percentage or an amount, never both.
    rules[0]["then"]["oneOf"] = [{"required": ["percent_off"]}, {"required": ["amount_off"]}]
    return rules


def _trigger_rules() -> list[dict[str, Any]]:
    return [
        _when("on", on, {"for" if k == "for_" else k for k in keys}, _TRIGGER_REQUIRED.get(on, []))
        for on, keys in TRIGGER_KEYS.items()
    ]


def _one_line(node: Any) -> Any:
    """Descriptions on one line (docstrings wrap) in Markdown quotes, everywhere."""
    if isinstance(node, dict):
        return {
            key: " ".join(value.split())
            if key == "description" and isinstance(value, str)
            else _one_line(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_one_line(item) for item in node]
    return node


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one kind of file: ``campaign``, ``lifecycle``, ``policy`` or
    ``pathway``."""
    spec, title, description = SCHEMAS[kind]
    schema = spec.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    if "RewardSpec" in defs:
        defs["RewardSpec"]["allOf"] = _reward_rules()
    if "TriggerSpec" in defs:
        defs["TriggerSpec"]["allOf"] = _trigger_rules()
    result = {
        "$schema": SCHEMA_URL,
        "title": title,
        "description": description,
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }
    return dict(_one_line(result))


def schema_text(kind: str) -> str:
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


def campaign_json_schema() -> dict[str, Any]:
    """The JSON Schema of a campaign file."""
    return json_schema("campaign")


def campaign_schema_text() -> str:
    return schema_text("campaign")
