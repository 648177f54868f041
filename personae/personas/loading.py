"""Persona files (YAML or JSON) to `Persona`, every problem named by file, line and field.

A file is parsed once into data and a map from each dotted field path
(`speech.max_sentences`, `examples.2.reply`) to its line, so that pydantic's
errors come back as `Problem`s a user can act on: where, which value, what is
wrong and how to fix it. All problems of a file are reported together.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined

from personae.errors import PersonaFileError, Problem
from personae.personas.model import SCHEMA_VERSION, Persona

__all__ = ["load_persona", "validate_files"]

_Loc = tuple[str, ...]
_SUFFIXES = (".yaml", ".yml", ".json")

_WHOLE = ("expected a whole number", "write a number like 3")
_NUMBER = ("expected a number", "write a number like 0.7")
_BOOL = ("expected true or false", "write `true` or `false`")
_MAPPING = ("expected a mapping", "write `key: value` lines indented under it")
_TYPE_TEXT = {  # pydantic error type -> (what is wrong, how to fix it)
    **dict.fromkeys(["int_parsing", "int_type", "int_from_float"], _WHOLE),
    **dict.fromkeys(["float_parsing", "float_type"], _NUMBER),
    **dict.fromkeys(["bool_parsing", "bool_type"], _BOOL),
    **dict.fromkeys(["dict_type", "model_type"], _MAPPING),
    "string_type": ("expected text", "write it as text, in quotes if it contains ': ' or ' #'"),
    "list_type": ("expected a list", "write one item per line starting with `- `, or `[a, b]`"),
    "string_too_short": ("is empty", "write some text, or delete the line"),
    "path_type": ("expected a file path", "write a path relative to this file, e.g. lore.yaml"),
}
_KINDS = {dict: "a mapping", list: "a list", type(None): "nothing"}
_REQUIRED_EXAMPLE = {
    "id": "id: brenna",
    "name": "name: Brenna",
    "examples.user": "user: Do you have a room?",
    "examples.reply": "reply: Aye, two silver a night.",
    "lore.content": "content: The Lantern Inn stands by the river.",
    "actions.name": "name: give_item",
    "actions.description": "description: Hand the player an item.",
}
_VALUE_FIX = {
    "lore": "add `keys: [word, ...]` that bring it up, or `constant: true`",
    "actions.parameters": "write e.g. `parameters: {type: object, properties: "
    "{item: {type: string}}, required: [item]}`",
}


@dataclass
class _Source:
    """One parsed file: its data and the line of every field path in it."""

    path: Path
    data: Any
    lines: dict[_Loc, int] = field(default_factory=dict)

    def line(self, loc: _Loc) -> int | None:
        """Line of `loc`, or of its nearest parent when `loc` is not in the file."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def problem(self, loc: _Loc, value: object, message: str, fix: str) -> Problem:
        """Make a problem at field `loc` of this file."""
        return Problem(self.path, self.line(loc), ".".join(loc), value, message, fix)


def load_persona(path: str | Path) -> Persona:
    """Load a persona from a YAML (`.yaml`, `.yml`) or JSON (`.json`) file.

    `lore_files` are read relative to the persona file and their entries are
    appended to the inline `lore`; `avatar` is found relative to the persona
    file too and made an absolute path.

    Args:
        path: The persona file.

    Returns:
        The validated persona.

    Raises:
        PersonaFileError: The file, or a lore file it names, cannot be read,
            parsed or validated; `problems` lists every problem found.

    """
    persona, problems, cause = _check(Path(path))
    if problems or persona is None:
        raise PersonaFileError(problems) from cause
    return persona


def validate_files(paths: Sequence[str | Path]) -> dict[Path, list[Problem]]:
    """Check persona files without raising, for `personae validate`.

    Args:
        paths: Persona files to check.

    Returns:
        Each path with its problems, an empty list when the file is valid.

    """
    return {Path(p): _check(Path(p))[1] for p in paths}


def _check(path: Path) -> tuple[Persona | None, list[Problem], Exception | None]:
    problems: list[Problem] = []
    src = _read(path, problems)
    if src is None:
        return None, problems, None
    if src.data is None:
        fix = f"start with `schema: {SCHEMA_VERSION}`, then `id: ...` and `name: ...`"
        return None, [src.problem((), None, "the file is empty", fix)], None
    if not isinstance(src.data, dict):
        kind = "a list" if isinstance(src.data, list) else "a single value"
        fix = "a persona is one mapping of `key: value` lines; remove the leading `- `"
        return None, [src.problem((), None, f"the file holds {kind}, not a mapping", fix)], None
    data, origins = _merge_lore(src, problems)
    _resolve_avatar(src, data, problems)
    try:
        persona = Persona.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problems.extend(_explain(err, src, data, origins))
        return None, sorted(problems, key=_order(path)), exc
    return (None if problems else persona), sorted(problems, key=_order(path)), None


def _order(path: Path) -> Callable[[Problem], tuple[bool, str, int]]:
    return lambda p: (p.path != path, str(p.path), p.line or 0)  # persona file first


def _read(path: Path, problems: list[Problem]) -> _Source | None:
    """Read and parse one file, or add why it cannot be and return `None`."""

    def fail(line: int | None, message: str, fix: str) -> _Source | None:
        problems.append(Problem(path, line, "", None, message, fix))
        return None

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return fail(None, f"file not found (looked at {path.resolve()})", "check the path")
    except IsADirectoryError:
        return fail(None, "is a directory, not a file", "give the path of a .yaml or .json file")
    except OSError as exc:
        return fail(None, f"cannot be read: {exc.strerror}", "check the file's permissions")
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        fix = f"rename it to {path.stem}.yaml (YAML) or {path.stem}.json (JSON)"
        return fail(
            None, f"has extension {suffix or '(none)'!r}; expected .yaml, .yml or .json", fix
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start : exc.start + 1].hex()
        return fail(line, f"is not UTF-8 text (byte 0x{byte})", "save the file as UTF-8")
    if suffix == ".json":
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as exc:
            fix = {
                "Expecting ',' delimiter": "add a comma between the items",
                "Expecting ':' delimiter": 'write `"key": value`',
                "Expecting property name enclosed in double quotes": "quote keys with "
                '"double quotes" and remove any comma before `}`',
            }.get(exc.msg, "check brackets, commas and double quotes near here")
            return fail(
                exc.lineno,
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg.lower()}",
                fix,
            )
        src = _Source(path, data)
        try:  # JSON is YAML; raw tabs can only be whitespace in valid JSON.
            node = yaml.compose(text.replace("\t", " "), Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None
    else:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            src = _Source(path, None if node is None else loader.construct_document(node))
        except yaml.YAMLError as exc:
            problems.append(_yaml_problem(path, text, exc))
            return None
        finally:
            loader.dispose()
    if node is not None:
        _index(node, (), src, problems)
    return src


def _yaml_problem(path: Path, text: str, exc: yaml.YAMLError) -> Problem:
    """Turn a YAML syntax error into a located problem with a fix."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return Problem(path, None, "", None, f"invalid YAML: {exc}", "check the file's syntax")
    mark, ctx = exc.problem_mark, exc.context_mark
    what, line, col = exc.problem or "", mark.line + 1, mark.column + 1
    lines = [*text.splitlines(), ""]
    key = re.match(r"\s*(?:-\s+)?([^:#\s]+)\s*:", lines[mark.line])
    message, fix = f"invalid YAML: {what}", "check indentation (spaces only) and quotes here"
    if "'\\t'" in what:
        message, fix = "a tab is used for indentation", "indent with spaces only, never tabs"
    elif "quoted scalar" in (exc.context or "") and ctx is not None:
        line, col = ctx.line + 1, ctx.column + 1
        message = "a quote opened here is never closed"
        fix = f"close it with {lines[ctx.line][ctx.column]} at the end of the text"
    elif "mapping values are not allowed" in what:
        if key and key.end() == mark.column + 1:
            message = "this key is indented deeper than the lines above allow"
            fix = f"align `{key.group(1)}:` with the keys it belongs with"
        else:
            message = "the value contains ': ', which YAML reads as a new key"
            fix = 'put the whole value in quotes: key: "..."'
    elif "expected <block end>" in what and ctx is not None:
        parent = re.match(r"\s*(?:-\s+)?([^:#\s]+)\s*:", lines[ctx.line])
        message = "the indentation does not match the lines above"
        if key and parent:
            fix = (
                f"indent with spaces, align `{key.group(1)}:` under "
                f"`{parent.group(1)}:` (line {ctx.line + 1})"
            )
        else:
            fix = "indent with spaces, keys of one mapping at the same column"
    elif "could not find expected ':'" in what and ctx is not None:
        line, col = ctx.line + 1, ctx.column + 1
        message, fix = "a line is neither `key: value` nor a `- ` item", "add `key:` or indent it"
    elif "single document" in (exc.context or ""):
        message, fix = "the file holds more than one YAML document", "keep one persona per file"
    elif "flow" in (exc.context or ""):
        message, fix = "a `[...]` or `{...}` is not closed", "close the bracket, commas between"
    elif "constructor" in what:
        message, fix = "uses a YAML tag personae does not read", "remove the `!!...` tag"
    return Problem(path, line, "", None, f"{message} (line {line}, column {col})", fix)


def _index(node: yaml.Node, loc: _Loc, src: _Source, problems: list[Problem]) -> None:
    """Record the line of every field path under `node`, flagging duplicate keys."""
    src.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
                continue
            line = key.start_mark.line + 1
            if key.value in seen:
                message = f"appears twice (first on line {seen[key.value]})"
                fix = "keep one; YAML silently keeps only the last"
                problems.append(
                    Problem(src.path, line, ".".join((*loc, key.value)), None, message, fix)
                )
                continue
            seen[key.value] = src.lines[(*loc, key.value)] = line
            _index(value, (*loc, key.value), src, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, str(i)), src, problems)
    elif isinstance(node, yaml.ScalarNode) and node.style is None:
        cut = _cut_by_comment(node)
        if cut is not None:
            problems.append(src.problem(
                loc, node.value,
                f"the text after it, {cut!r}, was dropped: in YAML a space and `#` start a "
                "comment",
                "put the whole value in double quotes, or use `>-` and write it on the next "
                "lines",
            ))


def _cut_by_comment(node: yaml.ScalarNode) -> str | None:
    """Return what a same-line comment cut off an unquoted string, if it looks like text.

    `reply: Ask in #help` is read as `Ask in`: channel names and hashtags in
    dialogue are text, not comments. A comment proper (`# note`, with a space)
    is left alone.
    """
    mark = node.end_mark
    buffer = getattr(mark, "buffer", None)
    if node.tag != "tag:yaml.org,2002:str" or not isinstance(buffer, str):
        return None
    end = buffer.find("\n", mark.pointer)
    rest = buffer[mark.pointer : end if end >= 0 else len(buffer)].rstrip("\0")
    match = _TEXT_COMMENT.match(rest)
    return match.group(1).strip() if match else None


_TEXT_COMMENT = re.compile(r"^[ \t]+(#\S.*)$")


_Origin = tuple[_Source, _Loc]


def _merge_lore(src: _Source, problems: list[Problem]) -> tuple[dict[str, Any], list[_Origin]]:
    """Append the entries of `lore_files` to `lore`; `origins[i]` says where lore entry i is."""
    data = dict(src.data)
    lore, files = data.get("lore") or [], data.get("lore_files") or []
    if not isinstance(lore, list) or not isinstance(files, list):
        return data, []
    origins: list[_Origin] = [(src, ("lore", str(i))) for i in range(len(lore))]
    merged = list(lore)
    for i, name in enumerate(files):
        if not isinstance(name, str):
            continue
        lore_path = src.path.parent / name
        if not lore_path.is_file():
            message = f"lore file not found (looked at {lore_path.resolve()})"
            fix = "lore file paths are relative to the persona file"
            problems.append(src.problem(("lore_files", str(i)), name, message, fix))
            continue
        lore_src = _read(lore_path, problems)
        if lore_src is None:
            continue
        entries, prefix = lore_src.data, tuple[str, ...]()
        if isinstance(entries, dict) and "entries" in entries:
            entries, prefix = entries["entries"], ("entries",)
        if not isinstance(entries, list):
            message = "a lore file holds a list of entries or an `entries:` list"
            fix = "write `entries:` then `- keys: [...]` and `content: ...` items"
            problems.append(lore_src.problem((), None, message, fix))
            continue
        merged.extend(entries)
        origins.extend((lore_src, (*prefix, str(j))) for j in range(len(entries)))
    data["lore"] = merged
    return data, origins


def _resolve_avatar(src: _Source, data: dict[str, Any], problems: list[Problem]) -> None:
    """Make `avatar` an absolute path, read relative to the persona file like `lore_files`."""
    avatar = data.get("avatar")
    if not isinstance(avatar, str) or not avatar.strip():
        return
    path = Path(avatar).expanduser()
    if not path.is_absolute():
        path = src.path.parent / path
    if not path.is_file():
        message = f"avatar image not found (looked at {path.resolve()})"
        fix = "the avatar path is relative to the persona file; fix it or remove the line"
        problems.append(src.problem(("avatar",), avatar, message, fix))
        return
    data["avatar"] = str(path.resolve())


def _explain(
    err: ErrorDetails, src: _Source, data: dict[str, Any], origins: list[_Origin]
) -> list[Problem]:
    """Turn one pydantic error into problems with a message and a fix."""
    kind, loc, value = err["type"], tuple(str(p) for p in err["loc"]), err["input"]
    text = err["msg"].removeprefix("Value error, ")
    if not loc and kind == "value_error":
        return _consistency(src, data) or [src.problem((), None, *text.partition("; ")[::2])]
    generic = ".".join(p for p in loc if not p.isdigit())
    message, fix = _TYPE_TEXT.get(kind, (text[:1].lower() + text[1:], "correct the value"))
    if kind == "missing":
        value = None
        message = "is required but missing"
        fix = f"add a line like `{_REQUIRED_EXAMPLE.get(generic, loc[-1] + ': ...')}`"
    elif kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        value, names = None, sorted(_fields(model)) if model is not None else []
        close = difflib.get_close_matches(loc[-1], names, n=1, cutoff=0.6)
        message = "is not a known field"
        fix = f"did you mean {close[0]!r}?" if close else f"remove it; known: {', '.join(names)}"
    elif kind == "literal_error" and loc == ("schema",):
        message = "is not a supported schema version"
        fix = f"write `schema: {SCHEMA_VERSION}`, the version this personae reads"
    elif kind == "literal_error":
        message, fix = f"must be one of {err.get('ctx', {}).get('expected')}", "pick one of those"
    elif kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
        message, fix = _range_text(loc, text)
    elif kind == "string_pattern_mismatch":
        message, fix = _pattern_text(generic, value, err.get("ctx", {}).get("pattern"))
    elif kind == "value_error":
        if isinstance(value, list):  # a list validator failed; point at the bad item
            for i, item in enumerate(value):
                if text.startswith(repr(item)):
                    loc, value = (*loc, str(i)), item
                    break
        message, _, given_fix = text.removeprefix(repr(value)).strip().partition("; ")
        fix = given_fix or _VALUE_FIX.get(generic, "correct the value")
    if isinstance(value, dict | list | None) and kind in _TYPE_TEXT:
        message += f", found {_KINDS[type(value)]}"
    if isinstance(value, dict | list):
        value = None
    if len(loc) >= 2 and loc[0] == "lore" and int(loc[1]) < len(origins):
        src, inner = origins[int(loc[1])]  # the entry may come from a lore file
        loc = (*inner, *loc[2:])
    return [src.problem(loc, value, message, fix)]


def _consistency(src: _Source, data: dict[str, Any]) -> list[Problem]:
    """Every cross-field problem (duplicate action names, unknown emotions), located."""
    problems: list[Problem] = []
    seen: dict[object, int] = {}
    for i, action in enumerate(data.get("actions") or []):
        name = action.get("name") if isinstance(action, dict) else None
        if name in seen:
            message = f"actions.{seen[name]} already has this name"
            fix = "give each host action its own name"
            problems.append(src.problem(("actions", str(i), "name"), name, message, fix))
        seen.setdefault(name, i)
    emotions = [str(e) for e in data.get("emotions") or []]
    for i, example in enumerate(data.get("examples") or []):
        emotion = example.get("emotion") if isinstance(example, dict) else None
        if emotion is not None and emotion not in emotions:
            close = difflib.get_close_matches(str(emotion), emotions, n=1, cutoff=0.8)
            fix = f"did you mean {close[0]!r}?" if close else f"add {emotion!r} to `emotions`"
            message = f"is not one of `emotions` {emotions}"
            problems.append(src.problem(("examples", str(i), "emotion"), emotion, message, fix))
    return problems


def _range_text(loc: _Loc, text: str) -> tuple[str, str]:
    model = _model_at(loc[:-1])
    info = _fields(model).get(loc[-1]) if model is not None else None
    metadata = info.metadata if info is not None else []
    bounds = {k: getattr(m, k) for m in metadata for k in ("ge", "gt", "le", "lt") if hasattr(m, k)}
    low, high = bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt"))
    if low is None or high is None or info is None:
        return text.lower().removeprefix("input "), "change the value"
    fix = f"use a value from {low} to {high}"
    if info.default not in (None, PydanticUndefined):
        fix += f", or delete the line to use the default {info.default}"
    return f"is outside {low}–{high}", fix


def _pattern_text(generic: str, value: object, pattern: str | None) -> tuple[str, str]:
    raw = str(value)
    if generic == "id":
        slug = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-_")[:64] or "my-character"
        return (
            "must be lowercase letters, digits, '-' or '_', starting with a letter or digit",
            f"write `id: {slug}`",
        )
    if generic == "speech.language":
        head, *rest = re.split(r"[-_]", raw.strip())
        tag = "-".join([head.lower(), *rest])
        guess = f"write `language: {tag}`" if re.match(pattern or "", tag) else "write e.g. `en`"
        return "is not a BCP 47 language tag like `en`, `pt-BR` or `zh-Hans`", guess
    if generic == "actions.name":
        slug = re.sub(r"\W+", "_", raw).strip("_")[:64] or "my_action"
        return (
            "must start with a letter or '_' and hold only letters, digits, '_' and '-'",
            f"write `name: {slug}`",
        )
    return f"does not match the pattern {pattern}", "change the value to match it"


def _model_at(loc: _Loc) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Persona
    for part in loc:
        if part.isdigit() or model is None:
            continue
        info = _fields(model).get(part)
        model = _inner_model(info.annotation) if info is not None else None
    return model


def _fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _inner_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
