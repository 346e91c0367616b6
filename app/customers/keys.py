"""Search keys for names and kana: hiragana, katakana and half-width all match each other."""

from __future__ import annotations

import re
import unicodedata

import jaconv

_SPACES = re.compile(r"[\s\u3000]+")


def name_key(name: str) -> str:
    """Name without spaces, NFKC-normalised (full-width ASCII → ASCII, half-width kana → full)."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", name or ""))


def kana_key(kana: str) -> str:
    """Kana as full-width katakana without spaces (ｻｶﾞ, さが and サガ give the same key)."""
    text = unicodedata.normalize("NFKC", kana or "")
    return _SPACES.sub("", jaconv.hira2kata(text))
