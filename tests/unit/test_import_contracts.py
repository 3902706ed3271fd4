"""The import contracts in pyproject.toml catch a wrong import.

The contracts are copied, unchanged, next to a tiny tree of the same rooms whose modules import
only what the floor plan allows; ``lint-imports`` must pass on it, and fail, naming the
contract, once one wrong import is added. The real tree is not checked here (``make lint``
does that), so these tests hold while code is still moving between rooms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# What each room of the tiny tree imports: everything the floor plan allows a room to need.
ALLOWED_IMPORTS = {
    "nudgeflow": (),
    "settings": ("nudgeflow",),
    "audience": ("nudgeflow",),
    "domain": ("audience", "nudgeflow"),
    "planning": ("domain", "audience"),
    "store": ("domain", "audience", "sqlalchemy"),
    "delivery": ("store", "planning", "domain"),
    "providers": ("delivery", "store", "domain"),
    "night": ("providers", "delivery", "store", "planning"),
    "demo": ("store", "domain"),
    "inbound": ("night", "providers", "delivery", "store"),
    "bootstrap": ("inbound", "night", "providers", "settings"),
    "flows": ("bootstrap", "night", "settings"),
    "web": ("bootstrap", "inbound", "settings"),
    "cli": ("flows", "web", "bootstrap", "demo", "settings"),
}


def _importlinter_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        config: dict[str, Any] = tomllib.load(file)["tool"]["importlinter"]
    return config


def _contract_name(contract_id: str) -> str:
    contracts = _importlinter_config()["contracts"]
    return str(next(c["name"] for c in contracts if c["id"] == contract_id))


def _toml_value(value: Any) -> str:
    # Strings, booleans and lists of strings are all the contracts use; JSON spells the
    # strings and lists the way TOML does.
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _write_config(path: Path) -> None:
    config = _importlinter_config()
    lines = ["[tool.importlinter]"]
    lines += [
        f"{key} = {_toml_value(value)}" for key, value in config.items() if key != "contracts"
    ]
    for contract in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in contract.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_tree(folder: Path) -> None:
    for room, imports in ALLOWED_IMPORTS.items():
        package = folder / room
        package.mkdir()
        (package / "__init__.py").write_text(f'"""The {room} room."""\n', encoding="utf-8")
        body = "".join(f"import {name}\n" for name in imports)
        (package / "room.py").write_text(f'"""What {room} uses."""\n\n{body}', encoding="utf-8")


def _lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS.exists(), "import-linter is a dev dependency: pip install -e '.[dev]'"
    # Only the tiny tree may be found: not the real rooms on the caller's PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(folder / "pyproject.toml")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _write_tree(tmp_path)
    _write_config(tmp_path / "pyproject.toml")
    return tmp_path


def test_a_tree_that_follows_the_floor_plan_keeps_every_contract(tree: Path) -> None:
    result = _lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("room", "wrong_import", "contract_ids"),
    [
        ("store", "night", ("layers", "store")),
        ("audience", "store", ("layers", "core")),
        ("domain", "sqlalchemy", ("core",)),
        ("providers", "settings", ("settings",)),
        ("night", "cli", ("layers", "cli")),
        ("bootstrap", "flows", ("layers", "flows")),
        ("night", "demo", ("layers",)),
    ],
)
def test_a_wrong_import_breaks_its_contract(
    tree: Path, room: str, wrong_import: str, contract_ids: tuple[str, ...]
) -> None:
    module = tree / room / "room.py"
    module.write_text(module.read_text(encoding="utf-8") + f"import {wrong_import}\n")
    result = _lint_imports(tree)
    assert result.returncode != 0, result.stdout
    for contract_id in contract_ids:
        assert f"{_contract_name(contract_id)} BROKEN" in result.stdout
    assert f"{room}.room -> {wrong_import}" in result.stdout


def test_every_product_package_is_under_contract() -> None:
    """A new room must be added to the contracts, not slip past them."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)
    packages = {
        pattern.rstrip("*")
        for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    config = _importlinter_config()
    assert set(config["root_packages"]) == packages == set(ALLOWED_IMPORTS)
    layered = {
        room.strip()
        for contract in config["contracts"]
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for room in layer.split("|")
    }
    assert packages - layered == {"settings"}
