"""What a card object held beyond what personae maps, and how to write it back exactly.

A card object (the character `data`, a `character_book`, one book entry) is
split into the values personae maps (`FieldMap.read`) and a *residue*: every
field personae does not use, verbatim; every mapped field whose card text
differs from what personae would write for the same values (`probability:
null` where personae writes nothing, a `mes_example` with its own spacing, a
trailing newline that the persona model strips), verbatim too; and a
`_roundtrip` record with `omitted`, the fields personae would write that the
card did not have.

Writing back (`FieldMap.join`) starts from what personae would write for the
current values and puts each kept original back as long as it still means
the same values. So an unchanged persona gives back the original object
field for field, and an edited one gives the edit, with the untouched fields
as they were.

`extensions` is looked into one level deep, so `extensions.probability` can
be mapped while `extensions.display_index` stays in the residue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from personae.personas._card_values import same

__all__ = ["ROUNDTRIP", "FieldMap", "flatten", "roundtrip_of", "unflatten", "without_roundtrip"]

ROUNDTRIP: Final = "_roundtrip"
"""Key of the round-trip record inside a residue (and inside `Persona.card`)."""

_EXT = "extensions"
_ABSENT: Final = object()

Values = dict[str, Any]
Fields = dict[str, Any]


def flatten(obj: Mapping[str, Any]) -> Fields:
    """Spread `extensions` into `extensions.KEY` fields; `extensions` itself becomes `{}`."""
    out: Fields = {}
    for key, value in obj.items():
        if key == _EXT and isinstance(value, Mapping):
            out[_EXT] = {}
            for sub, item in value.items():
                out[f"{_EXT}.{sub}"] = item
        else:
            out[key] = value
    return out


def unflatten(flat: Mapping[str, Any], order: Sequence[str] = ()) -> Fields:
    """Undo `flatten`; keys named in `order` come first, the rest keep their order."""
    ranked = sorted(flat, key=lambda k: order.index(k) if k in order else len(order))
    out: Fields = {}
    for key in ranked:
        value = flat[key]
        head, dot, sub = key.partition(".")
        if dot and head == _EXT:
            ext = out.get(_EXT)
            if not isinstance(ext, dict):
                ext = out[_EXT] = {}
            ext[sub] = value
        elif key == _EXT and isinstance(out.get(_EXT), dict):
            continue  # sub-keys already made the dict
        else:
            out[key] = dict(value) if key == _EXT and isinstance(value, Mapping) else value
    return out


def roundtrip_of(residue: Mapping[str, Any]) -> dict[str, Any]:
    """Return the `_roundtrip` record of a residue, `{}` when it has none."""
    record = residue.get(ROUNDTRIP)
    return dict(record) if isinstance(record, Mapping) else {}


def without_roundtrip(residue: Mapping[str, Any]) -> Fields:
    """Return the residue's card fields, without the round-trip record."""
    return {k: v for k, v in residue.items() if k != ROUNDTRIP}


@dataclass(frozen=True)
class FieldMap:
    """How one kind of card object maps to persona values and back.

    Attributes:
        keys: The mapped fields (flattened: `extensions.probability`).
        read: Mapped card fields to normalised values; pure, never fails on
            odd card values (but may raise `ValueError` on values that can
            make no persona at all).
        write: Values to the card fields personae writes for them, such that
            `read(write(v)) == v`.
        order: Preferred order of fields in written objects.
    """

    keys: frozenset[str]
    read: Callable[[Mapping[str, Any]], Values]
    write: Callable[[Mapping[str, Any]], Fields]
    order: tuple[str, ...] = ()

    def split(self, obj: Mapping[str, Any]) -> tuple[Values, Fields]:
        """Split a card object into its values and its residue."""
        flat = flatten(obj)
        mapped = {k: v for k, v in flat.items() if k in self.keys}
        values = self.read(mapped)
        written = self.write(values)
        residue = {
            k: v for k, v in flat.items()
            if k not in self.keys or not same(written.get(k, _ABSENT), v)
        }
        omitted = [k for k in written if k not in mapped]
        out = unflatten(residue)
        if omitted:
            out[ROUNDTRIP] = {"omitted": omitted}
        return values, out

    def join(
        self, values: Mapping[str, Any], residue: Mapping[str, Any], *, honor_omitted: bool = True
    ) -> Fields:
        """Write a card object from values and the residue `split` left.

        Args:
            values: The current values (possibly edited since `split`).
            residue: What `split` returned beside the values.
            honor_omitted: Leave out fields the original did not have; off when
                writing another card version, whose required fields must be there.

        Returns:
            The card object.
        """
        record = roundtrip_of(residue)
        written = self.write(values)
        target = self.read(written)
        flat = flatten(without_roundtrip(residue))
        overrides: list[tuple[str, object]] = [(k, v) for k, v in flat.items() if k in self.keys]
        omitted = record.get("omitted")
        if honor_omitted and isinstance(omitted, list):
            overrides += [(k, _ABSENT) for k in omitted if k in self.keys]
        chosen = written
        if overrides:
            joint = _applied(written, overrides)
            if self._means(joint, target):
                chosen = joint
            else:
                for item in overrides:
                    trial = _applied(chosen, [item])
                    if self._means(trial, target):
                        chosen = trial
        kept = {k: v for k, v in flat.items() if k not in self.keys}
        return unflatten({**kept, **chosen}, self.order)

    def _means(self, fields: Fields, target: Values) -> bool:
        try:
            return same(self.read(fields), target)
        except (ValueError, TypeError):
            return False


def _applied(fields: Fields, overrides: Sequence[tuple[str, object]]) -> Fields:
    out = dict(fields)
    for key, value in overrides:
        if value is _ABSENT:
            out.pop(key, None)
        else:
            out[key] = value
    return out
