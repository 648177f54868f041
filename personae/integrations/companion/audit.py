"""An append-only audit log of safety events, without message text, and crisis-referral counts.

Each line of `PERSONAE_HOME/companion/audit.jsonl` is one JSON event: when,
which tenant, persona and API key, a pseudonymous reference to the user,
and what the safety layer decided (step, profile, action, category, rule,
severity, flags). Never what anyone said: the log keeps an allow-list of
fields from the safety entries of `Reply.trace`, and drops the rest
(`evidence` snippets included).

The file is only ever appended to, and each line carries the SHA-256 of the
line before it (`prev`), so a line edited or removed later breaks the chain
(`AuditLog.verify`).

The user reference is a keyed hash of the user id; the key is kept per user
in the service's user index and deleted when the user is erased, after which
the user's old events can no longer be tied to anyone, while the counts stay
right.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

__all__ = ["AUDIT_FIELDS", "AuditLog", "is_referral", "safety_events"]

AUDIT_FIELDS: Final = (
    "step", "profile", "action", "category", "rule", "topic", "severity", "flags", "language",
    "locale", "pack_version", "score", "referral", "alert",
)
"""Fields of a `Reply.trace` safety entry that reach the log; everything else is dropped."""

_MAX_VALUE: Final = 80
"""Longest string kept from a safety entry: labels and rule ids, never sentences."""
_GENESIS: Final = "0" * 64


def safety_events(trace: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return the safety entries of a `Reply.trace`, cut down to `AUDIT_FIELDS`.

    Entries whose `step` starts with `safety` and that decided something (an
    action other than `pass`, a referral or an alert) are kept; strings are
    capped and anything that is not a label (text, nested data) is dropped.
    """
    found = []
    for entry in trace:
        step = entry.get("step")
        if not isinstance(step, str) or not step.startswith("safety"):
            continue
        if entry.get("action") == "pass" and not entry.get("alert") and not is_referral(entry):
            continue
        event: dict[str, Any] = {}
        for name in AUDIT_FIELDS:
            value = _label(entry.get(name)) if name != "alert" else _alert(entry.get(name))
            if value is not None:
                event[name] = value
        event["referral"] = is_referral(entry)
        found.append(event)
    return found


def is_referral(entry: Mapping[str, Any]) -> bool:
    """Whether a safety entry pointed the person to help (a crisis referral).

    True when the entry says so (`referral: true`, or a `referral` or
    `crisis_referral` flag), or when it answered out of character with help
    (`ooc_help`, the game profile's answer to real distress).
    """
    if entry.get("referral") is True:
        return True
    flags = entry.get("flags") or ()
    if isinstance(flags, list | tuple) and {"referral", "crisis_referral"} & set(map(str, flags)):
        return True
    return entry.get("action") == "ooc_help"


def _label(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return value[:_MAX_VALUE]
    if isinstance(value, list | tuple):
        return [str(v)[:_MAX_VALUE] for v in value if isinstance(v, str | int | float | bool)]
    return None


def _alert(value: Any) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    kept = {k: str(value[k])[:_MAX_VALUE] for k in ("kind", "severity") if value.get(k)}
    return kept or None


class AuditLog:
    """The append-only safety audit log of one service.

    Args:
        path: The JSONL file; created with its folder on the first event.

    Example:
        ```python
        log = AuditLog(home / "companion" / "audit.jsonl")
        await log.append({"kind": "safety", "tenant": "t1", "category": "crisis"})
        log.referrals("t1")["total"]
        ```
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._last: str | None = None

    async def append(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Add one event (off the event loop); `at`, `seq` and `prev` are filled in.

        Returns:
            The line as written.
        """
        return await asyncio.to_thread(self.append_sync, event)

    def append_sync(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Blocking `append`."""
        with self._lock:
            prev = self._last if self._last is not None else self._tail_hash()
            line = {"at": round(time.time(), 3), **event, "prev": prev}
            text = json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self._last = _digest(text)
            return line

    def events(
        self,
        tenant: str,
        *,
        since: float | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Return the tenant's events, newest first.

        Args:
            tenant: Whose events.
            since: Unix time; only events at or after it.
            kind: Only events of this kind (`safety`, `erasure`).
            limit: At most this many.
        """
        found = [
            e for e in self._read()
            if e.get("tenant") == tenant
            and (since is None or float(e.get("at", 0)) >= since)
            and (kind is None or e.get("kind") == kind)
        ]  # fmt: skip
        found.reverse()
        return found[:limit]

    def referrals(self, tenant: str, *, since: float | None = None) -> dict[str, Any]:
        """Count the tenant's crisis referrals: in total, per UTC day, persona and category."""
        days: Counter[str] = Counter()
        personas: Counter[str] = Counter()
        categories: Counter[str] = Counter()
        for event in self.events(tenant, since=since, kind="safety", limit=2**62):
            if not event.get("referral"):
                continue
            day = datetime.fromtimestamp(float(event.get("at", 0)), UTC).date().isoformat()
            days[day] += 1
            personas[str(event.get("persona"))] += 1
            categories[str(event.get("category"))] += 1
        return {
            "total": sum(days.values()),
            "by_day": dict(sorted(days.items())),
            "by_persona": dict(personas.most_common()),
            "by_category": dict(categories.most_common()),
        }

    def verify(self) -> int | None:
        """Check the hash chain; return the 1-based line where it breaks, or None when intact."""
        prev = _GENESIS
        for number, text in enumerate(self._lines(), start=1):
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                return number
            if line.get("prev") != prev:
                return number
            prev = _digest(text)
        return None

    def _tail_hash(self) -> str:
        last = None
        for text in self._lines():
            last = text
        return _GENESIS if last is None else _digest(last)

    def _lines(self) -> Sequence[str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [line for line in text.split("\n") if line]

    def _read(self) -> list[dict[str, Any]]:
        found = []
        for text in self._lines():
            try:
                found.append(json.loads(text))
            except json.JSONDecodeError:
                continue
        return found


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
