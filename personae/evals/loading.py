"""Scenario files (YAML or JSON) to `Suite`, every problem named by file, line and field.

Like persona files, a scenario file is parsed once into data and a map from
each dotted field path (`scenarios.0.turns.2.expect.max_sentences`) to its
line, so pydantic's errors come back as `Problem`s a user can act on. All
problems of a file are reported together.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from personae.errors import ConfigError, Problem
from personae.evals.scenario import SCENARIO_SCHEMA_VERSION, Suite

__all__ = ["check_file", "check_suite", "load_suite", "load_suites"]

_M = TypeVar("_M", bound=BaseModel)

_Loc = tuple[str, ...]
_SUFFIXES = (".yaml", ".yml", ".json")
_TYPE_TEXT = {
    "int_parsing": ("expected a whole number", "write a number like 3"),
    "int_type": ("expected a whole number", "write a number like 3"),
    "bool_parsing": ("expected true or false", "write `true` or `false`"),
    "bool_type": ("expected true or false", "write `true` or `false`"),
    "string_type": ("expected text", "write it as text, in quotes if it contains ': ' or ' #'"),
    "list_type": ("expected a list", "write one item per line starting with `- `, or `[a, b]`"),
    "dict_type": ("expected a mapping", "write `key: value` lines indented under it"),
    "model_type": ("expected a mapping", "write `key: value` lines indented under it"),
    "model_attributes_type": ("expected a mapping", "write `key: value` lines indented under it"),
    "too_short": ("is empty", "add at least one item"),
    "string_too_short": ("is empty", "write some text, or delete the line"),
}
_REQUIRED = {
    "persona": "persona: ../personas/innkeeper.yaml",
    "scenarios": "scenarios: followed by `- id: ...` items",
    "id": "id: room-for-the-night",
    "turns": "turns: followed by `- user: ...` items",
    "name": "name: rent_room",
    "text": "text: The traveller's name is Ann",
}


def load_suite(path: str | Path) -> Suite:
    """Read and validate one scenario file.

    Args:
        path: A `.yaml`, `.yml` or `.json` scenario file.

    Returns:
        The suite; `persona_path()` resolves its persona against the file's folder.

    Raises:
        ConfigError: The file cannot be read, parsed or validated; the message
            lists every problem as `file:line: field=value: what; fix`.

    """
    suite, problems = check_suite(path)
    if suite is None:
        raise ConfigError("\n".join(str(p) for p in problems))
    return suite


def load_suites(paths: Sequence[str | Path]) -> list[Suite]:
    """Read several scenario files, reporting the problems of all of them at once.

    Raises:
        ConfigError: Any file has a problem, or two suites share a scenario id
            (reports and scripted replies name scenarios by id).

    """
    suites: list[Suite] = []
    problems: list[Problem] = []
    for path in paths:
        suite, found = check_suite(path)
        problems.extend(found)
        if suite is not None:
            suites.append(suite)
    first: dict[str, Path] = {}
    for suite in suites:
        assert suite.source is not None
        for i, scenario in enumerate(suite.scenarios):
            if scenario.id in first and first[scenario.id] != suite.source:
                problems.append(Problem(
                    suite.source, None, f"scenarios.{i}.id", scenario.id,
                    f"is also a scenario id in {first[scenario.id]}",
                    "scenario ids must be unique across the suites of one run; rename one",
                ))
            first.setdefault(scenario.id, suite.source)
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems))
    return suites


def check_suite(path: str | Path) -> tuple[Suite | None, list[Problem]]:
    """Validate a scenario file without raising.

    Returns:
        The suite (None when there are problems) and every problem found.

    """
    suite, problems = check_file(path, Suite, start=(
        f"start with `schema: {SCENARIO_SCHEMA_VERSION}`, `persona: PATH` and `scenarios:`"
    ))
    return (suite.with_source(Path(path)) if suite is not None else None), problems


def check_file(
    path: str | Path, model: type[_M], *, start: str
) -> tuple[_M | None, list[Problem]]:
    """Validate a YAML or JSON file against a pydantic model, problems located by line.

    Args:
        path: The file.
        model: The model its content must validate as.
        start: How to begin the file, for the fix of an empty one.

    Returns:
        The model (None when there are problems) and every problem found.

    """
    path = Path(path)
    problems: list[Problem] = []
    parsed = _read(path, problems)
    if parsed is None:
        return None, problems
    data, lines = parsed
    if not isinstance(data, dict):
        what = "is empty" if data is None else "does not hold a mapping"
        return None, [Problem(path, 1, "", None, f"the file {what}", start)]
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        problems += [_explain(err, path, lines, model) for err in exc.errors(include_url=False)]
        return None, sorted(problems, key=lambda p: p.line or 0)
    if problems:
        return None, problems
    return value, []


def _read(path: Path, problems: list[Problem]) -> tuple[Any, dict[_Loc, int]] | None:
    def fail(line: int | None, message: str, fix: str) -> None:
        problems.append(Problem(path, line, "", None, message, fix))

    if path.suffix.lower() not in _SUFFIXES:
        fail(None, f"has extension {path.suffix or '(none)'!r}; expected .yaml, .yml or .json",
             f"rename it to {path.stem}.yaml")
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(None, f"file not found (looked at {path.resolve()})", "check the path")
        return None
    except UnicodeDecodeError:
        fail(None, "is not UTF-8 text", "save the file as UTF-8")
        return None
    except OSError as exc:
        fail(None, f"cannot be read: {exc.strerror or exc}", "check the path and permissions")
        return None
    lines: dict[_Loc, int] = {}
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text) if text.strip() else None
        else:
            data = yaml.safe_load(text)
        node = yaml.compose(text.replace("\t", " ") if path.suffix.lower() == ".json" else text,
                            Loader=yaml.SafeLoader)
    except json.JSONDecodeError as exc:
        fail(exc.lineno, f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
             f"{exc.msg.lower()}", "check brackets, commas and double quotes near here")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc)
        fail(line, f"invalid YAML: {what}", "check indentation (spaces only) and quotes here")
        return None
    if node is not None:
        _index(node, (), lines, path, problems)
    return data, lines


def _index(
    node: yaml.Node, loc: _Loc, lines: dict[_Loc, int], path: Path, problems: list[Problem]
) -> None:
    """Record the line of every field path under `node`, flagging duplicate keys."""
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                problems.append(Problem(
                    path, line, ".".join((*loc, key.value)), None,
                    f"appears twice (first on line {seen[key.value]})",
                    "keep one; YAML silently keeps only the last",
                ))
                continue
            seen[key.value] = lines[(*loc, key.value)] = line
            _index(value, (*loc, key.value), lines, path, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, str(i)), lines, path, problems)
    elif isinstance(node, yaml.ScalarNode) and node.style is None:
        cut = _cut_by_comment(node)
        if cut is not None:
            problems.append(Problem(
                path, node.start_mark.line + 1, ".".join(loc), node.value,
                f"the text after it, {cut!r}, was dropped: in YAML a space and `#` start a "
                "comment",
                "put the whole value in double quotes",
            ))


_TEXT_COMMENT = re.compile(r"^[ \t]+(#\S.*)$")


def _cut_by_comment(node: yaml.ScalarNode) -> str | None:
    """Return what a same-line comment cut off an unquoted text, if it looks like text.

    `reply: Ask in #help` is read as `Ask in`: channel names and hashtags are
    text, not comments. A comment proper (`# note`, with a space) is left alone.
    """
    buffer = getattr(node.end_mark, "buffer", None)
    if node.tag != "tag:yaml.org,2002:str" or not isinstance(buffer, str):
        return None
    end = buffer.find("\n", node.end_mark.pointer)
    rest = buffer[node.end_mark.pointer : end if end >= 0 else len(buffer)].rstrip("\0")
    match = _TEXT_COMMENT.match(rest)
    return match.group(1).strip() if match else None


def _line(lines: dict[_Loc, int], loc: _Loc) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _explain(
    err: ErrorDetails, path: Path, lines: dict[_Loc, int], root: type[BaseModel]
) -> Problem:
    """Turn one pydantic error into a located problem with a fix."""
    kind = err["type"]
    # Drop validator-internal parts (`function-before[...]`) so the path is the file's.
    loc = tuple(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    value: object = err.get("input")
    text = err["msg"].removeprefix("Value error, ")
    message, fix = _TYPE_TEXT.get(kind, (text, "correct the value"))
    if kind == "missing":
        value, message = None, "is required but missing"
        fix = f"add a line like `{_REQUIRED.get(loc[-1], loc[-1] + ': ...')}`"
    elif kind == "extra_forbidden":
        value = None
        names = sorted(_fields_at(root, loc[:-1]))
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        message = "is not a known field"
        fix = f"did you mean {close[0]!r}?" if close else f"remove it; known: {', '.join(names)}"
    elif kind == "literal_error" and loc == ("schema",):
        message = "is not a supported scenario file version"
        fix = f"write `schema: {SCENARIO_SCHEMA_VERSION}`"
    elif kind == "literal_error":
        message, fix = f"must be one of {err.get('ctx', {}).get('expected')}", "pick one of those"
    elif kind == "string_pattern_mismatch" and loc[-1:] == ("id",):
        message = "must be lowercase letters, digits, '-', '_' or '.', starting with a letter"
        fix = "write e.g. `id: room-for-the-night`"
    elif kind in {"greater_than_equal", "less_than_equal"}:
        message, fix = text[:1].lower() + text[1:], "change the value"
    elif kind == "value_error":
        message, _, given = text.removeprefix(repr(value)).strip().partition("; ")
        fix = given or "correct the value"
    if isinstance(value, dict | list):
        value = None
    return Problem(path, _line(lines, loc), ".".join(loc), value, message, fix)


def _fields_at(root: type[BaseModel], loc: _Loc) -> set[str]:
    """Return the field names of the model at `loc` under `root` (for "did you mean")."""
    current: object = root
    for part in loc:
        current = _unwrap(current)
        model = current if isinstance(current, type) and issubclass(current, BaseModel) else None
        info = None
        if model is not None:
            info = model.model_fields.get(part) or next(
                (f for f in model.model_fields.values() if f.alias == part), None
            )
        if info is not None:
            current = info.annotation
        else:  # a list index or a mapping key: step into the item type
            args = [a for a in get_args(current) if a is not type(None)]
            current = args[-1] if args else None
    model = _inner_model(current)
    if model is None:
        return set()
    return {info.alias or name for name, info in model.model_fields.items()}


def _unwrap(annotation: object) -> object:
    """Strip `Annotated[...]` and `X | None` down to `X`."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and type(None) in get_args(annotation):
            annotation = args[0]
            continue
        return annotation


def _inner_model(annotation: object) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
