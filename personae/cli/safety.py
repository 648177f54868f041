"""`personae safety ...`: see what the safety layer decides about a message, offline.

`personae safety check TEXT` screens TEXT as a message to a persona (or, with
`--reply`, as the persona's reply) and prints the verdict: the action, the
category and rule, the reply the person would get, the caregiver alert and
the audit record. `personae safety redact TEXT` prints TEXT with personal
data replaced. Neither calls a model.
"""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from personae.personas.model import Persona

__all__ = ["app", "register"]

app = typer.Typer(
    help="Safety screening: check a message or reply, redact personal data.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class ProfileChoice(StrEnum):
    """Safety profiles `--profile` accepts."""

    game = "game"
    community = "community"
    companion = "companion"


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def register(root: typer.Typer) -> None:
    """Add the `safety` command group to the `personae` app."""
    root.add_typer(app, name="safety")


def _fail(message: object) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _persona(path: Path | None, profile: ProfileChoice | None, language: str | None) -> Persona:
    from personae.errors import PersonaeError
    from personae.personas.loading import load_persona
    from personae.personas.model import Persona

    if path is not None:
        try:
            persona = load_persona(path)
        except PersonaeError as exc:
            raise _fail(exc) from None
        if profile is not None:
            persona = persona.model_copy(
                update={"safety": persona.safety.model_copy(update={"profile": profile.value})}
            )
    else:
        persona = Persona(
            id="safety-check",
            name="Companion",
            safety={"profile": (profile or ProfileChoice.companion).value},
        )
    if language is not None:
        try:
            speech = persona.speech.model_validate(
                {**persona.speech.model_dump(), "language": language}
            )
        except ValueError:
            raise _fail(
                f"--language={language!r} is not a BCP 47 language tag; use e.g. en, de, zh-Hans"
            ) from None
        persona = persona.model_copy(update={"speech": speech})
    return persona


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


@app.command()
def check(
    text: Annotated[str, typer.Argument(help="The message (or, with --reply, the reply).")],
    persona: Annotated[
        Path | None,
        typer.Option("--persona", "-p", help="Persona file (YAML or JSON); default: a "
                     "companion with no other settings."),
    ] = None,
    profile: Annotated[
        ProfileChoice | None,
        typer.Option(help="Safety profile to use instead of the persona's."),
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="The persona's language instead of its own, e.g. de.")
    ] = None,
    locale: Annotated[
        str | None,
        typer.Option(help="The person's locale (en-GB, es-US) for crisis lines and "
                     "emergency numbers."),
    ] = None,
    history: Annotated[
        list[str] | None,
        typer.Option("--history", help="An earlier message of the person; repeat, oldest "
                     "first. Crisis wording is scored across them."),
    ] = None,
    reply: Annotated[
        bool, typer.Option("--reply", help="Screen TEXT as the persona's reply.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what the safety layer decides about TEXT, without calling a model."""
    from personae.agents.safety import screen_in, screen_out
    from personae.errors import PersonaeError

    chosen = _persona(persona, profile, language)
    earlier = list(history or [])
    try:
        if reply:
            out = screen_out(chosen, text, history=earlier)
            result: dict[str, Any] = {
                "kind": "reply",
                "passed": out.action == "pass",
                "action": out.action,
                "category": out.category,
                "rule": out.rule,
                "text": out.text,
                "evidence": list(out.evidence),
                "audit": out.audit() if out.action != "pass" else None,
            }
        else:
            verdict = screen_in(chosen, text, history=earlier, user_history=earlier,
                                locale=locale)
            result = {
                "kind": "message",
                "passed": verdict.passed,
                "action": verdict.action,
                "category": verdict.category,
                "rule": verdict.rule,
                "reply": verdict.reply,
                "topic": verdict.topic,
                "alert": _plain(verdict.alert),
                "injection": _plain(verdict.injection),
                "locale": verdict.locale,
                "pack_version": verdict.pack_version,
                "score": round(verdict.score, 3),
                "ambiguous": verdict.ambiguous,
                "flags": list(verdict.flags),
                "evidence": list(verdict.evidence),
                "audit": verdict.audit() if not verdict.passed else None,
            }
    except PersonaeError as exc:
        raise _fail(exc) from None
    result = {"profile": chosen.safety.profile, **result}
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, default=_plain))
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    where = f" ({result['rule']})" if result.get("rule") else ""
    what = result.get("category") or result.get("topic") or "-"
    typer.echo(f"{result['action']}: {what}{where}  [profile {result['profile']}]")
    if result.get("topic"):
        typer.echo(f"topic: {result['topic']}")
    alert = result.get("alert")
    if alert:
        typer.echo(f"alert: {alert['kind']} ({alert['severity']})")
    if result.get("injection"):
        typer.echo(f"injection: {result['injection']['kind']}")
    if result.get("locale") or result.get("pack_version"):
        locale = result.get("locale") or "-"
        typer.echo(f"locale: {locale}  pack: {result.get('pack_version') or '-'}")
    if result["kind"] == "message":
        typer.echo(f"crisis score: {result['score']}" + ("  (ambiguous)" if result["ambiguous"]
                                                        else ""))
        if result.get("reply"):
            typer.echo(f"reply: {result['reply']}")
    elif result["action"] != "pass":
        typer.echo(f"sent instead: {result['text']}")


@app.command()
def redact(
    text: Annotated[str, typer.Argument(help="Text that may hold personal data.")],
    as_json: JsonOpt = False,
) -> None:
    """Print TEXT with card numbers, IBANs, national ids, e-mails and phones replaced."""
    from personae.agents.safety import find_pii
    from personae.agents.safety import redact as run_redact

    cleaned = run_redact(text)
    if as_json:
        kinds = [item.kind for item in find_pii(text)]
        typer.echo(json.dumps({"text": cleaned, "found": kinds}, ensure_ascii=False))
        return
    typer.echo(cleaned)
