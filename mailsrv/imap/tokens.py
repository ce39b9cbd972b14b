"""Shared IMAP value types: generic argument tokens and the BODY[section] spec.

The parser turns command arguments it does not parse specially (SEARCH keys, for one) into
``Token`` trees: an ``Atom`` (atoms, numbers, sequence sets, NIL, flags), ``bytes`` (a quoted
string or a literal, already unquoted / read whole) or a ``list`` (a parenthesized list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Atom:
    value: str


Token = Atom | bytes | list["Token"]

SectionText = Literal["", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]


@dataclass(frozen=True, slots=True)
class SectionSpec:
    """``BODY[1.2.HEADER.FIELDS (From To)]``: part (1, 2), text "HEADER.FIELDS", fields.

    ``part=()`` and ``text=""`` is the whole message (``BODY[]``). Field names are upper-cased.
    """

    part: tuple[int, ...] = ()
    text: SectionText = ""
    fields: tuple[str, ...] = ()
