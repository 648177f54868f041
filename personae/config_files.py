"""Reading YAML config files (Discord bot, companion service): the steps they share.

Each loader turns a problem into its own error class (`DiscordConfigError`,
`ConfigError`); these helpers only say what went wrong and how to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["read_config_text", "relative_to"]


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
