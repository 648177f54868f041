"""Where to get help: the crisis line and emergency number for a locale.

The numbers ship in the phrase packs (`resources:`), by region, and are
defaults: a deployment passes its own with `resources=` (keyed by region,
`GB`, or by locale, `es-US`), and should check the shipped ones for the
regions its users live in.

The region comes from the locale when it names one (`en-GB`, `zh-Hans-CN`);
otherwise it is the region of the language the person wrote in (`de` ->
`DE`), since that is the best guess of where they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from personae.agents._safety_phrases import (
    LocaleResources,
    PhrasePack,
    phrase_pack,
    shipped_languages,
)

__all__ = ["Place", "fill", "region_of"]

_REGION = re.compile(r"^(?:[A-Za-z]{2}|\d{3})$")
_GENERIC = LocaleResources(
    emergency="your local emergency number", crisis_line="a local crisis line"
)


def region_of(locale: str | None) -> str | None:
    """Return the region subtag of a BCP 47 tag (`en-GB` -> `GB`), or None."""
    if not locale:
        return None
    for part in re.split(r"[-_]", locale)[1:]:
        if _REGION.match(part) and not part.isdigit():
            return part.upper()
    return None


class Place:
    """Resolves the locale and help resources for replies, given what is known of the person.

    Args:
        locale: The person's locale (`en-GB`), if known; else the persona's
            `speech.language`.
        overrides: The deployment's own resources, by region (`GB`) or
            locale (`es-US`); they win over the packs'.

    """

    def __init__(
        self, locale: str | None, overrides: Mapping[str, LocaleResources] | None = None
    ) -> None:
        self.region = region_of(locale)
        self.overrides = dict(overrides or {})

    def locale(self, pack: PhrasePack) -> str:
        """Return the locale of a reply in `pack`'s language, e.g. `de-DE`."""
        region = self.region or pack.region
        return f"{pack.language}-{region}" if region else pack.language

    def resources(self, pack: PhrasePack) -> LocaleResources:
        """Return the crisis line and emergency number for a reply in `pack`'s language."""
        region = self.region or pack.region
        if region is not None:
            for key in (f"{pack.language}-{region}", region):
                if key in self.overrides:
                    return self.overrides[key]
            if region in pack.resources:
                return pack.resources[region]
            for language in shipped_languages():
                other = phrase_pack(language)
                if other is not None and region in other.resources:
                    return other.resources[region]
        if "default" in self.overrides:
            return self.overrides["default"]
        if "default" in pack.resources:
            return pack.resources["default"]
        return _GENERIC


def fill(line: str, resources: LocaleResources) -> str:
    """Put the crisis line and emergency number into a reply line."""
    return line.replace("{crisis_line}", resources.crisis_line).replace(
        "{emergency}", resources.emergency
    )
