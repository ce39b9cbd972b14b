"""The i;unicode-casemap collation (RFC 5051), which SORT and THREAD compare strings with
(RFC 5256 §3, I18NLEVEL=1 of RFC 5255).

Each character is replaced by its simple titlecase mapping and then decomposed (RFC 5051 §2);
the keys compare octet by octet in UTF-8, which for Python strings is code point order, so the
key is a ``str`` that sorts with ``<``. ASCII text, by far the common case, needs no
per-character work: its titlecase is its upper case and it decomposes to itself.

Where RFC 5051 leaves room, the keys are Dovecot's, so a mailbox sorts the same in both:
a character that has a titlecase mapping gets the canonical decomposition of its titlecase
(``é`` -> ``E`` + U+0301, ``ǆ`` -> ``ǅ``); one that has none gets its decomposition mapping
applied once, compatibility mappings included (``²`` -> ``2``, ``ﬁ`` -> ``fi``, ``ﬅ`` -> U+017F
``t``).
"""

from __future__ import annotations

import unicodedata


def casemap_key(text: str) -> str:
    """The i;unicode-casemap form of ``text`` (RFC 5051 §2): equal keys mean equal strings."""
    if text.isascii():
        return text.upper()
    return "".join(c.upper() if c.isascii() else _char_key(c) for c in text)


def _char_key(char: str) -> str:
    titled = _title(char)
    if titled != char or unicodedata.category(char) == "Lt":
        return unicodedata.normalize("NFD", titled)
    mapping = unicodedata.decomposition(char)
    if mapping.startswith("<"):  # a compatibility mapping: "<compat> 0066 0069"
        decomposed = "".join(chr(int(code, 16)) for code in mapping.split()[1:])
        return unicodedata.normalize("NFD", decomposed)
    return unicodedata.normalize("NFD", char)


def _title(char: str) -> str:
    """The simple titlecase mapping: Python's ``str.title`` gives the full one, which differs
    only where it makes several characters (``ß`` -> ``Ss``, ``ﬁ`` -> ``Fi``); the simple
    mapping leaves those alone."""
    titled = char.title()
    return titled if len(titled) == 1 else char
