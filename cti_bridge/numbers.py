"""Japanese phone number handling (C2) with ``phonenumbers``, default region JP.

Choices:

* A caller string is cleaned (NFKC: full-width digits and ``＋`` become ASCII; every dash
  variant, ``ー``, spaces, dots and brackets are removed), then ``+81…``, ``010-81…`` (the
  Japanese international prefix) and national ``0…`` forms are parsed.
* Only numbers ``phonenumbers`` deems *valid* get an E.164 form. A string that has digits but
  is no valid number (an internal extension ``201``, ``110``, garbage) gives
  ``number_e164 == ""``, ``withheld == ""`` and the digits in ``Caller.digits``; callers can
  still use ``last8(caller.digits)``. It is *not* reported as withheld: someone did send a
  number, it just is not one we can match exactly.
* An empty caller, or a special code/word, gives a withheld reason (``private``,
  ``out_of_area``, ``payphone``, ``error``, ``unavailable``) as in :data:`WITHHELD_LABELS`.
* ``184``/``186`` (per-call withhold/present prefixes) are stripped only by
  :func:`normalise_stored`: an incoming caller ID never carries them, stored data sometimes does.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from cti_bridge.events import WITHHELD_LABELS

__all__ = [
    "Caller",
    "clean_name",
    "dialable",
    "display_national",
    "last8",
    "normalise_caller",
    "normalise_stored",
    "withheld_from_text",
]

REGION = "JP"

# Everything that separates digit groups in hand-written or full-width numbers (after NFKC).
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−ー･・.()（）\[\]/]")
_DIGITS = re.compile(r"\d+")

# Single-letter codes (modem NMBR, Number Display) and words (SIP/AMI/PBX displays).
_WITHHELD_WORDS: dict[str, str] = {
    "p": "private",
    "o": "out_of_area",
    "s": "out_of_area",
    "c": "payphone",
    "e": "error",
    "private": "private",
    "anonymous": "private",
    "withheld": "private",
    "restricted": "private",
    "非通知": "private",
    "unknown": "unavailable",
    "<unknown>": "unavailable",
    "unavailable": "unavailable",
    "通知不可": "unavailable",
    "outofarea": "out_of_area",
    "表示圏外": "out_of_area",
    "interactionwithotherservice": "out_of_area",
    "payphone": "payphone",
    "coinlinepayphone": "payphone",
    "公衆電話": "payphone",
    "error": "error",
    "受信エラー": "error",
}


@dataclass(frozen=True, slots=True)
class Caller:
    """A normalised caller.

    ``number_e164`` is ``""`` when withheld or not a valid number; ``digits`` holds the ASCII
    digits as received (national form, ``+`` kept) whenever there were any; ``display`` is what
    to show: national format (``0952-32-6611``), the Japanese withheld label, or the digits.
    """

    number_e164: str
    withheld: str
    display: str
    digits: str = ""


def _clean(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip()
    return _SEPARATORS.sub("", text)


def withheld_from_text(text: str) -> str:
    """Return the withheld code for a special caller string, or ``""`` when it is not one.

    Understands modem/ND codes (P, O, S, C, E), SIP/AMI words (anonymous, ``<unknown>``,
    "Coin line/payphone", "Interaction with other service", "Unavailable") and the Japanese
    labels themselves.
    """
    key = _clean(text).lower().strip('"')
    return _WITHHELD_WORDS.get(key, "")


def _parse(digits: str) -> phonenumbers.PhoneNumber | None:
    if digits.startswith("010") and not digits.startswith("+"):
        digits = "+" + digits[3:]  # 010 is Japan's international call prefix
    try:
        parsed = phonenumbers.parse(digits, REGION)
    except NumberParseException:
        return None
    return parsed if phonenumbers.is_valid_number(parsed) else None


def _display(parsed: phonenumbers.PhoneNumber) -> str:
    fmt = (
        PhoneNumberFormat.NATIONAL
        if phonenumbers.region_code_for_number(parsed) == REGION
        else PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, fmt)


def _from_digits(digits: str) -> Caller:
    parsed = _parse(digits)
    if parsed is None:
        return Caller("", "", digits, digits)
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    return Caller(e164, "", _display(parsed), digits)


def normalise_caller(raw: str | None) -> Caller:
    """Normalise an incoming caller ID string (any source) to a :class:`Caller`.

    ``""``/``None`` → withheld ``unavailable``; ``P`` → ``private``; ``０３ー１２３４ー５６７８``
    → ``+81312345678``; ``010-81-3-1234-5678`` → ``+81312345678``.
    """
    if raw is None or not raw.strip():
        return Caller("", "unavailable", WITHHELD_LABELS["unavailable"])
    code = withheld_from_text(raw)
    if code:
        return Caller("", code, WITHHELD_LABELS[code])
    text = _clean(raw)
    # Keep a leading '+' and the digits; drop e.g. ';user=phone' leftovers or letters.
    plus = "+" if text.startswith("+") else ""
    digits = plus + "".join(_DIGITS.findall(text))
    if not digits.strip("+"):
        return Caller("", "unavailable", WITHHELD_LABELS["unavailable"])
    return _from_digits(digits)


def normalise_stored(raw: str | None) -> Caller:
    """Normalise a phone number from stored customer data (imports, forms).

    Like :func:`normalise_caller` but strips a ``184``/``186`` prefix in front of a national
    number, and never reports a withheld reason (empty input gives an empty :class:`Caller`).
    """
    if raw is None or not raw.strip():
        return Caller("", "", "", "")
    text = _clean(raw)
    plus = "+" if text.startswith("+") else ""
    digits = plus + "".join(_DIGITS.findall(text))
    if not digits.strip("+"):
        return Caller("", "", raw.strip(), "")
    if not plus and digits[:3] in ("184", "186") and digits[3:4] == "0" and len(digits) >= 13:
        digits = digits[3:]
    return _from_digits(digits)


def last8(number: str) -> str:
    """Return the last 8 digits of ``number`` (E.164 or any digits), for partial matching."""
    digits = "".join(_DIGITS.findall(unicodedata.normalize("NFKC", number)))
    return digits[-8:]


@lru_cache(maxsize=4096)
def display_national(e164: str) -> str:
    """Format an E.164 number for display: ``+81952326611`` → ``0952-32-6611``.

    Foreign numbers get the international format; anything unparsable is returned unchanged.
    Cached: the live board shows the same callers on every update.
    """
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, REGION)
    except NumberParseException:
        return e164
    return _display(parsed)


def dialable(number: str) -> str:
    """Return digits to dial from Japan: national (``0312345678``) or ``010`` + international.

    Accepts E.164 or any form :func:`normalise_stored` understands; returns the bare digits of
    the input when it is no valid number (e.g. an extension).
    """
    caller = normalise_stored(number)
    if not caller.number_e164:
        return "".join(_DIGITS.findall(unicodedata.normalize("NFKC", number)))
    parsed = phonenumbers.parse(caller.number_e164, REGION)
    if phonenumbers.region_code_for_number(parsed) == REGION:
        national = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
        return "".join(_DIGITS.findall(national))
    return "010" + caller.number_e164[1:]


def clean_name(name: str) -> str:
    """Tidy a caller name for display: NFKC (half-width katakana → full-width), trimmed,
    and empty when it is only a placeholder such as ``<unknown>``."""
    text = unicodedata.normalize("NFKC", name).strip().strip('"').strip()
    return "" if text.lower() in ("<unknown>", "unknown", "") else text
