"""ElizaOS `character.json` (v0 and v1) to persona fields.

| character.json | persona |
| --- | --- |
| `name` | `name` |
| `bio` (text or list) | `description`, one line per item |
| `lore` | `backstory`, one line per item |
| `system` | `instructions` |
| `adjectives` | `style.tone`, comma-separated |
| `topics` | `style.context` ("Topics of interest: ...") |
| `style.all` | `style.style`, one line per rule |
| `style.chat` | `style.response_format`, one line per rule |
| `messageExamples` | `examples`: a message of someone else followed by one of the character |
| `knowledge` (text items) | `lore`, constant entries (files and directories are kept, not read) |

v0 files name speakers with `user` and carry `clients` and `modelProvider`;
v1 files use `name` and `plugins`. Everything else (`username`, `clients`,
`plugins`, `postExamples`, `style.post`, `templates`, `settings`...) is kept
under `Persona.card` at `data.extensions.eliza`, so a card export carries it.
`settings.secrets`, a top-level `secrets`, and any setting whose name says
key, token, secret or password (or whose value looks like an API key) are
dropped: never copied, never reported with their values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from personae.personas._card_values import as_text

__all__ = ["ElizaImport", "eliza_to_persona"]

_SECRET_NAME: Final = re.compile(r"secret|token|passw|credential|api[_-]?key|(^|_)key$|private",
                                 re.IGNORECASE)
_SECRET_VALUE: Final = re.compile(
    r"^(sk|pk|rk|xox[abpr]|ghp|gho|github_pat|AIza|hf)[-_][A-Za-z0-9_-]{8,}"
    r"|^[A-Fa-f0-9]{32,}$|^eyJ[A-Za-z0-9_-]{10,}\."
)
_CHARACTER_SPEAKERS: Final = ("{{agentname}}", "{{char}}", "{{name}}")
_MAPPED: Final = ("name", "bio", "lore", "system", "adjectives", "topics", "messageExamples",
                  "knowledge")


@dataclass
class ElizaImport:
    """What an ElizaOS character.json gave.

    Attributes:
        version: `v0` (`clients`, `modelProvider`, `user` speakers) or `v1`.
        fields: Persona fields, ready for validation (without `id`).
        kept: Everything personae does not use, secrets removed.
        mapped: `(character.json field, persona field)` pairs.
        dropped: Names of settings removed as secrets (never their values).
        notes: Remarks for the import report.
    """

    version: Literal["v0", "v1"]
    fields: dict[str, Any]
    kept: dict[str, Any]
    mapped: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _lines(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value] if value is not None else []
    texts = [as_text(item).strip() for item in items if not isinstance(item, Mapping)]
    return [t for t in texts if t]


def _version(obj: Mapping[str, Any]) -> Literal["v0", "v1"]:
    if "clients" in obj or "modelProvider" in obj:
        return "v0"
    for convo in obj.get("messageExamples") or []:
        for message in convo if isinstance(convo, list) else []:
            if isinstance(message, Mapping) and "user" in message and "name" not in message:
                return "v0"
    return "v1"


def _scrub(value: object, where: str, dropped: list[str]) -> object:
    """Copy a settings value without anything that looks like a secret."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            path = f"{where}.{key}"
            named = _SECRET_NAME.search(str(key)) and not isinstance(item, Mapping | list)
            if named or str(key).lower() == "secrets" or _looks_secret(item):
                dropped.append(path)
            else:
                out[key] = _scrub(item, path, dropped)
        return out
    if isinstance(value, list):
        kept = []
        for i, item in enumerate(value):
            if _looks_secret(item):
                dropped.append(f"{where}[{i}]")
            else:
                kept.append(_scrub(item, f"{where}[{i}]", dropped))
        return kept
    return value


def _looks_secret(value: object) -> bool:
    return isinstance(value, str) and _SECRET_VALUE.match(value.strip()) is not None


def _examples(obj: Mapping[str, Any], names: set[str]) -> tuple[list[dict[str, str]], int]:
    pairs: list[dict[str, str]] = []
    skipped = 0
    for convo in obj.get("messageExamples") or []:
        if not isinstance(convo, list):
            skipped += 1
            continue
        turns: list[tuple[bool, str]] = []
        for message in convo:
            if not isinstance(message, Mapping):
                continue
            speaker = as_text(message.get("name", message.get("user"))).strip().lower()
            content = message.get("content")
            text = as_text(content.get("text") if isinstance(content, Mapping) else content)
            if text.strip():
                turns.append((speaker in names, text.strip()))
        i = 0
        while i < len(turns):
            if not turns[i][0] and i + 1 < len(turns) and turns[i + 1][0]:
                pairs.append({"user": turns[i][1], "reply": turns[i + 1][1]})
                i += 2
            else:
                skipped += 1
                i += 1
    return pairs, skipped


def eliza_to_persona(obj: Mapping[str, Any]) -> ElizaImport:
    """Map an ElizaOS character.json onto persona fields.

    Args:
        obj: The parsed character.json.

    Returns:
        Persona fields (not yet validated), the kept remainder and report material.
    """
    version = _version(obj)
    name = as_text(obj.get("name")).strip()
    result = ElizaImport(version=version, fields={"name": name}, kept={})
    result.mapped.append(("name", "name"))
    fields, mapped = result.fields, result.mapped
    style: dict[str, str] = {}

    def put(source: str, target: str, text: str) -> None:
        if text:
            mapped.append((source, target))
            if target.startswith("style."):
                style[target.removeprefix("style.")] = text
            else:
                fields[target] = text

    put("bio", "description", "\n".join(_lines(obj.get("bio"))))
    put("lore", "backstory", "\n".join(_lines(obj.get("lore"))))
    put("system", "instructions", as_text(obj.get("system")).strip())
    put("adjectives", "style.tone", ", ".join(_lines(obj.get("adjectives"))))
    topics = _lines(obj.get("topics"))
    put("topics", "style.context", f"Topics of interest: {', '.join(topics)}." if topics else "")
    raw_style = obj.get("style")
    eliza_style: Mapping[str, Any] = raw_style if isinstance(raw_style, Mapping) else {}
    put("style.all", "style.style", "\n".join(_lines(eliza_style.get("all"))))
    put("style.chat", "style.response_format", "\n".join(_lines(eliza_style.get("chat"))))
    if style:
        fields["style"] = style

    speakers = {name.lower(), as_text(obj.get("username")).strip().lower(), *_CHARACTER_SPEAKERS}
    examples, skipped = _examples(obj, speakers - {""})
    if examples:
        fields["examples"] = examples
        mapped.append(("messageExamples", f"examples ({len(examples)})"))
    if skipped:
        result.notes.append(f"messageExamples: {skipped} message(s) without a user/character "
                            "pair were not turned into examples (kept in the card)")

    raw_knowledge = obj.get("knowledge")
    knowledge: list[Any] = raw_knowledge if isinstance(raw_knowledge, list) else []
    texts = [as_text(k).strip() for k in knowledge if isinstance(k, str) and k.strip()]
    if texts:
        fields["lore"] = [{"name": f"knowledge {i + 1}", "constant": True, "content": t}
                          for i, t in enumerate(texts)]
        mapped.append(("knowledge", f"lore ({len(texts)} constant entries)"))
    if len(texts) < len(knowledge):
        result.notes.append("knowledge: file and directory items are kept in the card, not read; "
                            "add such files to `lore_files` or `personae memory ingest` them")

    kept: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "secrets":
            result.dropped.append("secrets")
        elif key == "settings":
            kept[key] = _scrub(value, "settings", result.dropped)
        elif key == "style" and isinstance(value, Mapping):
            rest = {k: v for k, v in value.items() if k not in ("all", "chat")}
            if rest:
                kept[key] = rest
        elif key == "knowledge" and isinstance(value, list):
            files = [k for k in value if not isinstance(k, str)]
            if files:
                kept[key] = files
        elif key in _MAPPED and key != "messageExamples":
            continue
        else:
            kept[key] = value
    result.kept = kept
    return result
