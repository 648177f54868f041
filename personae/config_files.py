"""Reading YAML config files (Discord bot, companion service): the steps they share.

Each loader turns a problem into its own error class (`DiscordConfigError`,
`ConfigError`); these helpers only say what went wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from personae.errors import Problem

__all__ = ["ConfigProblems", "Loc", "parse_config_yaml", "read_config_text", "relative_to"]

Loc = tuple[str, ...]
"""Where a value sits in a config file: its field path, e.g. `("tenants", "acme", "keys", "0")`."""


def read_config_text(
    path: Path, fail: Callable[[str, str], Exception], *, what: str
) -> str:
    """Return the text of the config file at `path`.

    Args:
        path: The file.
        fail: Makes the loader's error from `(problem, fix)`.
        what: What the file should be, for the fix of a directory given
            instead (e.g. "the bot's .yaml config file").

    Raises:
        Exception: What `fail` returns, when the file is missing, a
            directory, not UTF-8 or unreadable.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise fail(f"file not found (looked at {path.resolve()})", "check the path") from None
    except IsADirectoryError:
        raise fail("is a directory", f"give the path of {what}") from None
    except UnicodeDecodeError:
        raise fail("is not UTF-8 text", "save the file as UTF-8") from None
    except OSError as exc:
        raise fail(f"cannot be read: {exc.strerror}", "check the file's permissions") from None


def relative_to(config_path: Path, value: object) -> object:
    """Resolve a path written in a config file against that file's folder.

    Values that are not non-empty strings come back unchanged, for the
    loader's validation to report.
    """
    if not isinstance(value, str) or not value.strip():
        return value
    file = Path(value).expanduser()
    return (file if file.is_absolute() else config_path.parent / file).resolve()


class ConfigProblems:
    """The problems found in one config file, each placed on the line of its field.

    A problem at a field the file does not have (a missing one) goes on the
    line of its nearest written parent.
    """

    def __init__(self, path: Path, lines: dict[Loc, int]) -> None:
        self.path = path
        self.lines = lines
        self.found: list[Problem] = []

    def add(self, loc: Loc, value: object, message: str, fix: str) -> None:
        """Note one problem at field path `loc`."""
        line = next((self.lines[loc[:end]] for end in range(len(loc), -1, -1)
                     if loc[:end] in self.lines), None)  # fmt: skip
        self.found.append(Problem(self.path, line, ".".join(loc), value, message, fix))

    def by_line(self) -> list[Problem]:
        """Return the problems in the order of the file."""
        return sorted(self.found, key=lambda p: p.line or 0)


def parse_config_yaml(
    path: Path, text: str, fail: Callable[[Problem], Exception]
) -> tuple[object, ConfigProblems]:
    """Parse a config file's YAML; return its data and an empty problem list that knows its lines.

    Raises:
        Exception: What `fail` returns for the located syntax problem, when
            the text is not valid YAML.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or "the file is not valid YAML"
        raise fail(Problem(path, mark.line + 1 if mark is not None else None, "", None,
                           f"invalid YAML: {what}",
                           "check indentation (spaces only), quotes and colons here")) from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _index(node, (), lines)
    return data, ConfigProblems(path, lines)


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    """Record the line of every field path under `node`."""
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                sub = (*loc, key.value)
                lines[sub] = key.start_mark.line + 1
                _index(value, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, str(i)), lines)
