"""Personal data in text: found, checked and replaced before anything is stored.

`redact(text)` replaces what it finds with a tag naming its kind:

- `[card]`: payment card numbers (13-19 digits, spaces or dashes allowed)
  that pass the Luhn check;
- `[iban]`: IBANs whose mod-97 check holds;
- `[national_id]`: US Social Security numbers (`123-45-6789`, minus the
  ranges never issued), UK National Insurance numbers (`QQ 12 34 56 C`, with
  the prefixes never used left out), German Steuer-IDs (11 digits of the
  official shape with a valid check digit) and Chinese resident identity
  numbers (18 characters, a valid birth date and ISO 7064 check character);
- `[email]`: e-mail addresses;
- `[phone]`: phone numbers (7-15 digits, written the way phone numbers are:
  with a `+` or a leading `0`, an area code in brackets, or in groups).

Checksums keep ordinary numbers (order numbers, amounts, dates) from being
taken for cards or IBANs; a number that fails its check is left alone
unless another kind claims it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = ["PiiKind", "PiiMatch", "find_pii", "redact"]

PiiKind = Literal["card", "iban", "national_id", "email", "phone"]
"""A kind of personal data `redact` replaces."""


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data found in a text.

    Attributes:
        kind: What it is.
        start: Where it starts in the text.
        end: Where it ends (exclusive).

    """

    kind: PiiKind
    start: int
    end: int

    @property
    def tag(self) -> str:
        """The replacement text, e.g. `[card]`."""
        return f"[{self.kind}]"


_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]){11,32}")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_NINO = re.compile(
    r"(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_STEUER_ID = re.compile(r"(?<![\d-])(\d{2}) ?(\d{3}) ?(\d{3}) ?(\d{3})(?![\d-])")
_CN_ID = re.compile(r"(?<![\dXx])(\d{17}[\dXx])(?![\dXx])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{1,5}){0,5}(?![\w])"
)
_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdecimal())


def luhn_ok(number: str) -> bool:
    """Return True when the digits of `number` pass the Luhn check."""
    digits = [int(char) for char in _digits(number)]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return bool(digits) and total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """Return True when `candidate` (spaces allowed) is an IBAN whose mod-97 check holds."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    if not compact.isascii() or not compact.isalnum():
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in moved)
    return int(number) % 97 == 1


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def steuer_id_ok(number: str) -> bool:
    """Return True for an 11-digit German tax id of the official shape with a valid check digit.

    Shape: no leading zero; among the first ten digits one digit appears
    twice or three times (three times never in a row) and the others at
    most once. Check digit: ISO 7064 MOD 11,10.
    """
    digits = _digits(number)
    if len(digits) != 11 or digits[0] == "0":
        return False
    head = digits[:10]
    counts = sorted((head.count(d) for d in set(head)), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return False
    if counts[0] == 3 and re.search(r"(\d)\1\1", head):
        return False
    product = 10
    for char in head:
        total = (int(char) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return check == int(digits[10])


def cn_id_ok(number: str) -> bool:
    """Return True for an 18-character Chinese resident id with a real birth date and check."""
    if len(number) != 18 or not number[:17].isascii() or not number[:17].isdigit():
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if not 1900 <= int(number[6:10]) <= 2100:
        return False
    total = sum(int(char) * weight for char, weight in zip(number[:17], _CN_WEIGHTS, strict=True))
    return _CN_CHECK[total % 11] == number[17].upper()


def _iban_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for found in _IBAN.finditer(text):
        # The pattern may run on into following words ("... 00 is mine"):
        # try the candidate's ends from the longest, at word boundaries.
        start, end = found.span()
        ends = [end] + [start + i for i, char in enumerate(found.group(0)) if char == " "]
        for stop in sorted(set(ends), reverse=True):
            if iban_ok(text[start:stop]):
                spans.append((start, stop))
                break
    return spans


def _card_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for found in _CARD.finditer(text):
        candidate = found.group(0)
        if luhn_ok(candidate) and len(set(_digits(candidate))) > 1:
            spans.append(found.span())
            continue
        # A card number may follow other digits ("call 0800 ... 4111 1111 ..."):
        # try the groups from the right.
        groups = [m for m in re.finditer(r"\d+", candidate)]
        for first in range(1, len(groups)):
            start = groups[first].start()
            tail = candidate[start:]
            if 13 <= len(_digits(tail)) <= 19 and luhn_ok(tail):
                spans.append((found.start() + start, found.end()))
                break
    return spans


def _phone_ok(candidate: str) -> bool:
    digits = _digits(candidate)
    if not 7 <= len(digits) <= 15 or _DATE.match(candidate) or not candidate.isascii():
        return False
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", candidate):
        return False  # 1.234.567: an amount
    groups = re.split(r"[ .-]", re.sub(r"[()+]", "", candidate))
    if candidate.startswith(("+", "(")) or digits.startswith("0"):
        return True
    if re.fullmatch(r"(?:\d{3}[ .-])?\d{3}-\d{4}", candidate):
        return True  # North American 555-123-4567, 555-1234
    return len(digits) >= 10 and len(groups) <= 4


def find_pii(text: str) -> list[PiiMatch]:
    """Return the personal data in `text`, in order, without overlaps.

    Where two kinds claim the same characters, the more specific one wins
    (a checked card or IBAN over a phone number).

    Args:
        text: Any text.

    Returns:
        Matches with their kind and span.

    """
    found: list[PiiMatch] = []

    def claim(kind: PiiKind, start: int, end: int) -> None:
        if all(end <= item.start or start >= item.end for item in found):
            found.append(PiiMatch(kind, start, end))

    for match in _EMAIL.finditer(text):
        claim("email", *match.span())
    for span in _iban_spans(text):
        claim("iban", *span)
    for span in _card_spans(text):
        claim("card", *span)
    for match in _CN_ID.finditer(text):
        if cn_id_ok(match.group(1)):
            claim("national_id", *match.span())
    for match in _SSN.finditer(text):
        if _ssn_ok(match.group(1), match.group(3), match.group(4)):
            claim("national_id", *match.span())
    for match in _NINO.finditer(text):
        if match.group(1).upper() not in _NINO_BAD_PREFIXES:
            claim("national_id", *match.span())
    for match in _STEUER_ID.finditer(text):
        if steuer_id_ok(match.group(0)):
            claim("national_id", *match.span())
    for match in _PHONE.finditer(text):
        candidate = match.group(0).strip()
        if _phone_ok(candidate):
            start = match.start() + match.group(0).index(candidate)
            claim("phone", start, start + len(candidate))
    return sorted(found, key=lambda item: item.start)


def redact(text: str) -> str:
    """Return `text` with personal data replaced by `[card]`, `[iban]`, `[national_id]`, ....

    Run it on anything stored: memories, transcripts, logs.

    Args:
        text: Any text.

    Returns:
        The text with every match of `find_pii` replaced by its tag.

    Example:
        ```python
        redact("My card is 4111 1111 1111 1111, mail me at ann@example.org")
        # "My card is [card], mail me at [email]"
        ```

    """
    parts = []
    last = 0
    for item in find_pii(text):
        parts.append(text[last : item.start])
        parts.append(item.tag)
        last = item.end
    parts.append(text[last:])
    return "".join(parts)
