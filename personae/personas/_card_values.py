"""Loose JSON values from cards, read leniently into the types personae uses.

Card writers disagree on types: `insertion_order` as `10.0`, `probability`
as `null`, `secondary_keys` as one comma-separated string, `enabled` missing.
Reading never fails on such values; it takes what the value plainly means
and falls back to the default otherwise. What the card really said is kept
for round trip by `_card_residue`, so a lenient read loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["as_bool", "as_int", "as_keys", "as_opt_bool", "as_opt_int", "as_text", "same"]


def same(a: object, b: object) -> bool:
    """Compare JSON values, telling `1` from `1.0` and `True` from `1`; key order aside."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def as_text(value: object) -> str:
    """Read the text of a card field: `None` is empty, numbers written out, the rest JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def as_int(value: object, default: int, *, low: int | None = None, high: int | None = None) -> int:
    """Read a whole number from an int, a float or digits; `default` for anything else."""
    number = as_opt_int(value)
    if number is None:
        number = default
    if low is not None:
        number = max(low, number)
    if high is not None:
        number = min(high, number)
    return number


def as_opt_int(value: object) -> int | None:
    """Read like `as_int`, with `None` for a missing or unreadable value."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return round(value)
    if isinstance(value, str):
        try:
            return round(float(value.strip()))
        except (ValueError, OverflowError):
            return None
    return None


def as_bool(value: object, default: bool) -> bool:
    """Read a flag: JSON booleans as they are, `null` or missing as `default`."""
    flag = as_opt_bool(value)
    return default if flag is None else flag


def as_opt_bool(value: object) -> bool | None:
    """Read a flag that may be unset: `None` for null, numbers by their truth."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0", ""):
            return False
    return None


def as_keys(value: object) -> list[str]:
    """Read lorebook keys from a list, or from one comma-separated string; blanks dropped."""
    items: list[Any]
    if value is None:
        items = []
    elif isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        items = [value]
    keys = [as_text(item).strip() for item in items if item is not None]
    return [key for key in keys if key]
