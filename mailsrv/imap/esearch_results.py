"""The RETURN options of SEARCH and SORT and the result items they ask for (RFC 4731 ESEARCH,
RFC 5267 ESORT and CONTEXT, RFC 9394 PARTIAL, RFC 5182 SAVE).

``parse_return_options`` reads the list after ``RETURN``; ``result_items`` writes the data of
an ``* ESEARCH`` response for results in search order (ascending) or sort order. In sort order
ALL and PARTIAL keep the order, so only ascending runs become ranges (``5,3:4,2``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailsrv.imap.strings import string
from mailsrv.imap.tokens import Atom, Token

#: Every RETURN option: RFC 4731, RFC 5182 (SAVE), RFC 5267 (UPDATE, CONTEXT), RFC 9394.
RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE", "UPDATE", "CONTEXT", "PARTIAL"})
#: Positions in a PARTIAL range are nz-number (RFC 9394 §4): at most 2^32 - 1.
MAX_POSITION = 2**32 - 1
_RANGE = re.compile(r"(-?)([1-9][0-9]*):(-?)([1-9][0-9]*)")


class ReturnError(ValueError):
    """A RETURN list the command must refuse with BAD."""


@dataclass(frozen=True, slots=True)
class Partial:
    """``PARTIAL first:last`` (RFC 9394 §3.1): 1-based positions in the result, counted from
    the end when negative (``-1`` is the last). ``low`` is the position nearer the start of
    the counting (``4:2`` is ``2:4``, ``-5:-1`` is ``-1:-5``)."""

    low: int
    high: int

    @property
    def text(self) -> str:
        return f"{self.low}:{self.high}"

    def select(self, results: Sequence[int]) -> Sequence[int]:
        """The results at these positions, in result order."""
        if self.low > 0:
            return results[self.low - 1 : self.high]
        n = len(results)
        start, stop = max(n + self.high, 0), max(n + self.low + 1, 0)
        return results[start:stop]


@dataclass(frozen=True, slots=True)
class ReturnOptions:
    """The parsed options (upper case, in the order given, without PARTIAL's range)."""

    options: tuple[str, ...]
    partial: Partial | None = None


def parse_return_options(items: list[Token]) -> ReturnOptions:
    """The options of ``RETURN (...)``; an empty list means ``ALL`` (RFC 4731 §3.1)."""
    options: list[str] = []
    partial: Partial | None = None
    i = 0
    while i < len(items):
        item = items[i]
        if not isinstance(item, Atom) or item.value.upper() not in RETURN_OPTIONS:
            raise ReturnError(f"unknown RETURN option {_show(item)}")
        option = item.value.upper()
        if option == "PARTIAL":
            if partial is not None or i + 1 >= len(items):
                raise ReturnError("PARTIAL needs one range (e.g. PARTIAL 1:100)")
            partial = parse_partial(items[i + 1])
            i += 1
        if option not in options:
            options.append(option)
        i += 1
    if partial is not None and "ALL" in options:
        raise ReturnError("PARTIAL and ALL cannot be combined (RFC 9394 §3.1)")
    if not options or options == ["CONTEXT"]:
        options.append("ALL")
    return ReturnOptions(tuple(options), partial)


def parse_partial(tok: Token) -> Partial:
    """``first:last`` with both ends of one sign, neither 0 nor ``*`` (RFC 9394 §4)."""
    m = _RANGE.fullmatch(tok.value) if isinstance(tok, Atom) else None
    if m is None or m.group(1) != m.group(3):
        raise ReturnError("PARTIAL needs a range like 1:100 or -1:-100")
    a, b = int(m.group(2)), int(m.group(4))
    if a > MAX_POSITION or b > MAX_POSITION:
        raise ReturnError("PARTIAL range out of bounds")
    low, high = min(a, b), max(a, b)
    if m.group(1):
        return Partial(-low, -high)
    return Partial(low, high)


def ordered_set(numbers: Sequence[int]) -> str:
    """A sequence set listing ``numbers`` in the given order: ascending runs as ranges."""
    if not numbers:
        return ""
    out: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:]:
        if n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)


def result_items(returns: ReturnOptions, results: Sequence[int]) -> bytes:
    """The ESEARCH data for ``results``: ``MIN 2 MAX 9 ALL 2:4,9 COUNT 4``, ``PARTIAL (...)``.

    MIN and MAX are the first and last result: for a search the lowest and highest number, for
    a sort the first and last in sort order (RFC 5267 §3.1, as Dovecot answers); MIN, MAX and
    ALL are left out when nothing matched (RFC 4731 §3.1); SAVE, UPDATE and CONTEXT add
    nothing here.
    """
    options = returns.options
    out: list[bytes] = []
    if results:
        if "MIN" in options:
            out.append(b"MIN %d" % results[0])
        if "MAX" in options:
            out.append(b"MAX %d" % results[-1])
        if "ALL" in options:
            out.append(b"ALL " + ordered_set(results).encode())
    if returns.partial is not None:  # before COUNT, in Dovecot's order
        chosen = ordered_set(returns.partial.select(results)) or "NIL"
        out.append(f"PARTIAL ({returns.partial.text} {chosen})".encode())
    if "COUNT" in options:
        out.append(b"COUNT %d" % len(results))
    return b" ".join(out)


def esearch_head(tag: str, uid: bool) -> bytes:
    """``* ESEARCH (TAG "tag")`` and `` UID`` for a UID command (RFC 4731 §3.1)."""
    return b"* ESEARCH (TAG " + string(tag.encode()) + (b") UID" if uid else b")")


def saved_results(returns: ReturnOptions, results: Sequence[int]) -> list[int]:
    """What ``RETURN (SAVE ...)`` keeps for ``$`` (RFC 5182 §2.4, RFC 9394 §3.3): with only
    MIN, MAX and/or PARTIAL beside it, just the messages those return; else all of them."""
    options = set(returns.options)
    if not results or options & {"ALL", "COUNT"} or not options & {"MIN", "MAX", "PARTIAL"}:
        return list(results)
    kept: list[int] = []
    if "MIN" in options:
        kept.append(results[0])
    if "MAX" in options:
        kept.append(results[-1])
    if returns.partial is not None:
        kept.extend(returns.partial.select(results))
    return sorted(set(kept))


def _show(tok: Token) -> str:
    if isinstance(tok, Atom):
        return tok.value[:40]
    return "(...)"
