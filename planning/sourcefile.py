"""YAML user files read with every key's line and column kept, and pydantic errors turned
into ``path:line:col: key.path: message`` problems (the layer dbt lacks).

Reading is bounded (``planning.yaml_limits``): a file too large, nested too deeply or
expanding into too many values through aliases is one problem, found in milliseconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nudgeflow.errors import CampaignFileError, FileProblem
from nudgeflow.userfiles import not_a_file
from planning.problem_text import describe
from planning.yaml_limits import LimitExceeded, ValueBudget, nesting_problem, size_problem

Model = TypeVar("Model", bound=BaseModel)
KeyPath = tuple[str | int, ...]


@dataclass
class SourceFile:
    """A parsed YAML document as plain Python values, plus where each key path was written."""

    path: str
    data: Any
    positions: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, key_path: KeyPath) -> tuple[int, int]:
        """Line and column of ``key_path``, or of its nearest ancestor that was written."""
        for end in range(len(key_path), 0, -1):
            found = self.positions.get(key_path[:end])
            if found is not None:
                return found
        return (1, 1)

    def problem(self, key_path: KeyPath, message: str, severity: str = "error") -> FileProblem:
        line, column = self.locate(key_path)
        return FileProblem(self.path, line, column, format_key_path(key_path), message, severity)


def format_key_path(key_path: KeyPath) -> str:
    """``('stages', 1, 'when')`` → ``stages[1].when``."""
    text = ""
    for part in key_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _plain(
    node: Any,
    here: KeyPath,
    positions: dict[KeyPath, tuple[int, int]],
    budget: ValueBudget,
    open_nodes: set[int],
) -> Any:
    budget.spend()
    if isinstance(node, (CommentedMap, CommentedSeq)):
        if id(node) in open_nodes:
            raise LimitExceeded("a YAML alias refers to a value that contains it")
        open_nodes.add(id(node))
        try:
            return _plain_collection(node, here, positions, budget, open_nodes)
        finally:
            open_nodes.discard(id(node))
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, dt.date):
        # YAML would make 2026-01-01 a date; our specs take ISO text and parse it themselves.
        return node.isoformat()
    return str(node)


def _plain_collection(
    node: CommentedMap | CommentedSeq,
    here: KeyPath,
    positions: dict[KeyPath, tuple[int, int]],
    budget: ValueBudget,
    open_nodes: set[int],
) -> Any:
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            # A key merged in with ``<<: *anchor`` was written at its anchor: point at
            # the mapping that merges it.
            line, column = node.lc.data.get(key, (node.lc.line, node.lc.col))[:2]
            positions[(*here, str(key))] = (line + 1, column + 1)
            result[str(key) if not isinstance(key, (int, bool)) else key] = _plain(
                value, (*here, str(key)), positions, budget, open_nodes
            )
        return result
    items = []
    for index, value in enumerate(node):
        line, column = node.lc.item(index)
        positions[(*here, index)] = (line + 1, column + 1)
        items.append(_plain(value, (*here, index), positions, budget, open_nodes))
    return items


def load_yaml(path: Path, display: str | None = None) -> SourceFile:
    """Read one YAML document, refusing duplicate keys; raise ``CampaignFileError`` on any
    syntax problem."""
    name = display or str(path)
    problem = not_a_file(path)  # before opening: a FIFO would wait for a writer
    if problem == "no such file":
        problem = "file not found"
    if problem is not None:
        raise CampaignFileError([FileProblem(name, 1, 1, "", problem)])
    try:
        too_large = size_problem(path.stat().st_size)
        if too_large is not None:
            raise CampaignFileError([FileProblem(name, 1, 1, "", too_large)])
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CampaignFileError(
            [FileProblem(name, 1, 1, "", f"not UTF-8 text ({exc.reason})")]
        ) from None
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
        raise CampaignFileError([FileProblem(name, 1, 1, "", message)]) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> SourceFile:
    """Parse one YAML document within the limits of ``planning.yaml_limits``; raise
    ``CampaignFileError`` with its one problem."""
    too_deep = nesting_problem(text)
    if too_deep is not None:
        line, column, message = too_deep
        raise CampaignFileError([FileProblem(name, line, column, "", message)])
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except RecursionError:  # the nesting estimate missed a deep document
        raise CampaignFileError(
            [FileProblem(name, 1, 1, "", "the document is nested too deeply")]
        ) from None
    except (ValueError, OverflowError) as exc:  # a scalar YAML cannot make: 2026-13-45
        raise CampaignFileError([_unreadable_value(text, name, exc)]) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        message = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if "duplicate key" in message or "found duplicate key" in str(exc):
            message = "duplicate key " + message.split("duplicate key", 1)[-1].strip()
        raise CampaignFileError([FileProblem(name, line, column, "", message)]) from None
    source = SourceFile(name, None)
    try:
        source.data = _plain(document, (), source.positions, ValueBudget(), set())
    except LimitExceeded as exc:
        raise CampaignFileError([FileProblem(name, 1, 1, "", str(exc))]) from None
    return source


def _scalars(node: Node) -> Iterator[ScalarNode]:
    if isinstance(node, ScalarNode):
        yield node
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            yield from _scalars(key)
            yield from _scalars(value)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            yield from _scalars(item)


def _unreadable_value(text: str, name: str, exc: Exception) -> FileProblem:
    """The first scalar YAML cannot turn into a value (an impossible date, an integer of
    thousands of digits), located by composing the document without constructing it."""
    yaml = YAML(typ="rt")
    for scalar in _scalars(yaml.compose(text)):
        try:
            yaml.constructor.construct_object(scalar, deep=True)
        except (ValueError, OverflowError) as found:
            mark = scalar.start_mark
            message = f"{scalar.value[:40]!r} cannot be read: {str(found).split(';')[0]}"
            return FileProblem(name, mark.line + 1, mark.column + 1, "", message)
    return FileProblem(name, 1, 1, "", f"a value cannot be read: {exc}")


def _written_path(data: Any, loc: KeyPath) -> KeyPath:
    """Drop the parts of a pydantic location that are not in the document (union tags)."""
    path: list[str | int] = []
    here = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(here, dict) and part in here:
            here = here[part]
        elif isinstance(here, list) and isinstance(part, int) and part < len(here):
            here = here[part]
        elif not last:
            continue
        path.append(part)
    return tuple(path)


def validation_problems(
    source: SourceFile, exc: ValidationError, model: type[BaseModel]
) -> list[FileProblem]:
    """Every pydantic error as a located problem in plain words, in file order."""
    problems = []
    for error in exc.errors():
        loc: KeyPath = _written_path(source.data, tuple(error["loc"]))
        problems.append(source.problem(loc, describe(error, model)))
    return sorted(problems, key=lambda p: (p.line, p.column))


def validate_source(source: SourceFile, model: type[Model]) -> Model:
    """Validate the document against ``model``; raise ``CampaignFileError`` with every problem."""
    if not isinstance(source.data, dict):
        raise CampaignFileError(
            [FileProblem(source.path, 1, 1, "", "expected a mapping of keys to values")]
        )
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        raise CampaignFileError(validation_problems(source, exc, model)) from None


def load_with_unique_ids(
    paths: Iterable[Path], kind: str, problems: list[FileProblem]
) -> Iterator[tuple[Path, SourceFile, bool]]:
    """Each of ``paths`` that parses as YAML, with whether its ``id`` repeats the id of an
    earlier file. A file that does not parse, and a repeated id (``"{kind} id 'x' is also
    used by FILE"``), are added to ``problems``: the loaders of campaign and pathway files
    share this, so a repeated id reads the same in both."""
    first_with_id: dict[str, str] = {}
    for path in paths:
        try:
            source = load_yaml(path)
        except CampaignFileError as exc:
            problems.extend(exc.problems)
            continue
        written_id = source.data.get("id") if isinstance(source.data, dict) else None
        duplicate = isinstance(written_id, str) and written_id in first_with_id
        if isinstance(written_id, str) and duplicate:
            other = first_with_id[written_id]
            problems.append(
                source.problem(("id",), f"{kind} id '{written_id}' is also used by {other}")
            )
        elif isinstance(written_id, str):
            first_with_id[written_id] = source.path
        yield path, source, duplicate
