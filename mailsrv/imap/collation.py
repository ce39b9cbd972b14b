"""The i;unicode-casemap collation (RFC 5051), which SORT and THREAD compare strings with
(RFC 5256 §3, I18NLEVEL=1 of RFC 5255).

Each character is replaced by its titlecase form, then by its full decomposition; the keys
compare octet by octet in UTF-8, which for Python strings is code point order, so the key is
a ``str`` that sorts with ``<``. ASCII text, by far the common case, needs no per-character
work: its titlecase is its upper case and it decomposes to itself.
"""

from __future__ import annotations

import unicodedata


def casemap_key(text: str) -> str:
    """The i;unicode-casemap form of ``text`` (RFC 5051 §2): equal keys mean equal strings."""
    if text.isascii():
        return text.upper()
    titled = "".join(_title(c) for c in text)
    # The decomposition field of UnicodeData applies whatever its tag, so compatibility
    # decompositions count too (RFC 5051 §2 step 2): NFKD.
    return unicodedata.normalize("NFKD", titled)


def _title(char: str) -> str:
    titled = char.title()
    # A character whose titlecase is several characters (``ß`` -> ``Ss``) keeps the full
    # mapping; the simple mapping would leave it alone, the full one still compares equal to
    # what a user types.
    return titled if titled else char
