"""Hostile YAML files are refused quickly, in bounded memory, as one located problem: alias
bombs, deep nesting, aliases inside their own anchor, files too large. Ordinary files (and
the shipped ones) are not affected.

Without the limits the alias bomb expands to a billion values, and 10,000 nested brackets
keep ruamel.yaml's scanner busy for minutes; CPU time and traced memory are measured so a
regression fails instead of hanging.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from nudgeflow.errors import CampaignFileError
from planning.sourcefile import load_yaml, parse_yaml
from planning.yaml_limits import MAX_DEPTH, MAX_FILE_BYTES, nesting_problem

ROOT = Path(__file__).resolve().parents[3]
CPU_SECONDS = 1.0
PEAK_BYTES = 32 * 1024 * 1024


def _billion_laughs() -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    return text


HOSTILE = {
    "billion laughs": (_billion_laughs(), "1:1: the document holds more than 10,000 values"),
    "10,000 nested brackets": ("a: " + "[" * 10_000 + "]" * 10_000, "nested more than 50"),
    "10,000 nested braces": ("a: " + "{b: " * 10_000 + "}" * 10_000, "nested more than 50"),
    "10,000 nested sequences": ("- " * 10_000 + "x\n", "nested more than 50 levels deep"),
    "deep indentation": ("".join(" " * i + "a:\n" for i in range(1_000)), "nested more than"),
}


@pytest.fixture
def measured() -> Iterator[None]:
    tracemalloc.start()
    started = time.process_time()
    yield
    spent = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert spent < CPU_SECONDS, f"took {spent:.2f} s of CPU"
    assert peak < PEAK_BYTES, f"peaked at {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_documents_are_one_problem(name: str, measured: None) -> None:
    text, message = HOSTILE[name]
    with pytest.raises(CampaignFileError) as caught:
        parse_yaml(text, "campaigns/x.yaml")
    [problem] = caught.value.problems
    assert message in str(problem)
    assert str(problem).startswith("campaigns/x.yaml:")


def test_the_depth_is_located_where_it_is_passed() -> None:
    # The mapping is one level, so the 50th bracket (at column 3 + 50) is one too many.
    assert nesting_problem("a: " + "[" * 60 + "]" * 60) == (
        1,
        3 + MAX_DEPTH,
        f"the document is nested more than {MAX_DEPTH} levels deep",
    )


def test_an_alias_inside_its_own_anchor_is_not_followed_forever(measured: None) -> None:
    # ruamel.yaml leaves the inner alias empty (a structure that contained itself would be
    # refused as "a YAML alias refers to a value that contains it").
    assert parse_yaml("a: &a [1, *a]\n", "x.yaml").data == {"a": [1, None]}


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path, measured: None) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("description: " + "x" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    with pytest.raises(CampaignFileError) as caught:
        load_yaml(path, "campaigns/huge.yaml")
    assert [str(p) for p in caught.value.problems] == [
        f"campaigns/huge.yaml:1:1: the file is {MAX_FILE_BYTES + 14:,} bytes; campaign files "
        f"may be at most {MAX_FILE_BYTES:,} bytes"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "name: 'a [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ quoted'\n",
        'name: "a {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{ quoted"\n',
        "name: plain [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ text\n",
        "name: |\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nid: x\n",
        "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nid: x\n",
    ],
    ids=["single-quoted", "double-quoted", "plain", "block scalar", "comment"],
)
def test_brackets_in_text_are_not_nesting(text: str) -> None:
    assert nesting_problem(text) is None
    parse_yaml(text, "x.yaml")


def test_merge_keys_are_read_and_located(tmp_path: Path) -> None:
    source = parse_yaml("base: &base {within: 14d}\nwindow:\n  <<: *base\n  extra: 1\n", "x.yaml")
    assert source.data["window"] == {"extra": 1, "within": "14d"}
    assert source.locate(("window", "within")) == (3, 3)


def test_the_shipped_files_are_within_the_limits() -> None:
    for path in [*(ROOT / "campaigns").glob("*.yaml"), *(ROOT / "examples").rglob("*.yaml")]:
        assert nesting_problem(path.read_text(encoding="utf-8")) is None, path
        load_yaml(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nstarts: 2026-13-45\n", "x.yaml:2:9: '2026-13-45' cannot be read: month must be"),
        ("priority: " + "9" * 5000 + "\n", "x.yaml:1:11: '99999"),
        ("n: !!int many\n", "x.yaml:1:4: 'many' cannot be read: invalid literal for int()"),
    ],
    ids=["impossible date", "5000 digits", "tagged int"],
)
def test_values_yaml_cannot_make_are_located_problems(text: str, expected: str) -> None:
    # Before, ruamel.yaml's ValueError escaped as a traceback.
    with pytest.raises(CampaignFileError) as caught:
        parse_yaml(text, "x.yaml")
    [problem] = caught.value.problems
    assert str(problem).startswith(expected)
