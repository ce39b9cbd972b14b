"""IMAP sequence sets (RFC 3501 §9 ``sequence-set``, RFC 5182 ``$``).

A set is kept as the ranges it was written with, ``*`` stored as None, so ``str()`` gives the
set back in compact form. Resolving merges the ranges into sorted disjoint intervals once;
membership is a bisect over them, so ``1:*`` on a large mailbox costs nothing per message
until the caller asks for the list itself.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: The largest value a seq-number or UID may have (RFC 3501 ``nz-number`` is 32-bit).
MAX_NUMBER = 2**32 - 1

_NUMBER = re.compile(r"[1-9][0-9]*|\*")

Bound = int | None  # None is "*"


def _bound(text: str) -> Bound:
    if not _NUMBER.fullmatch(text):
        if text == "0" or re.fullmatch(r"0+[0-9]*", text):
            raise ValueError(f"invalid number {text!r} in sequence set (0 is not allowed)")
        raise ValueError(f"invalid number {text!r} in sequence set")
    if text == "*":
        return None
    value = int(text)
    if value > MAX_NUMBER:
        raise ValueError(f"number {text} in sequence set is larger than 2^32-1")
    return value


def _fmt(b: Bound) -> str:
    return "*" if b is None else str(b)


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence set. ``ranges`` holds (low, high) pairs; ``uses_saved`` means ``$``."""

    ranges: tuple[tuple[Bound, Bound], ...] = ()
    uses_saved: bool = False

    @classmethod
    def parse(cls, text: str) -> SequenceSet:
        """Parse ``1:3,5,7:*`` or ``$``; raises ValueError with a reason."""
        if text == "$":
            return cls((), uses_saved=True)
        if not text:
            raise ValueError("empty sequence set")
        ranges: list[tuple[Bound, Bound]] = []
        for item in text.split(","):
            if not item:
                raise ValueError(f"empty element in sequence set {text!r}")
            low_text, sep, high_text = item.partition(":")
            low = _bound(low_text)
            high = _bound(high_text) if sep else low
            ranges.append(_normal(low, high))
        return cls(tuple(ranges))

    @classmethod
    def from_values(cls, values: Iterable[int]) -> SequenceSet:
        """The compact set of the given numbers: ``[1, 2, 3, 5]`` -> ``1:3,5``."""
        ranges: list[tuple[Bound, Bound]] = []
        for low, high in _merge((v, v) for v in values):
            ranges.append((low, high))
        return cls(tuple(ranges))

    def __str__(self) -> str:
        if self.uses_saved:
            return "$"
        return ",".join(_fmt(a) if a == b else f"{_fmt(a)}:{_fmt(b)}" for a, b in self.ranges)

    def intervals(self, max_value: int) -> list[tuple[int, int]]:
        """Sorted disjoint inclusive intervals within 1..max_value (``*`` is max_value)."""
        if self.uses_saved:
            raise ValueError("'$' must be replaced by the saved result before resolving")
        if max_value <= 0:
            return []
        pairs: list[tuple[int, int]] = []
        for a, b in self.ranges:
            low = max_value if a is None else a
            high = max_value if b is None else b
            if low > high:
                low, high = high, low
            high = min(high, max_value)
            if low <= high:
                pairs.append((low, high))
        return _merge(pairs)

    def resolve(self, max_value: int) -> list[int]:
        """Every number in the set within 1..max_value, sorted and unique."""
        out: list[int] = []
        for low, high in self.intervals(max_value):
            out.extend(range(low, high + 1))
        return out

    def contains(self, n: int, max_value: int) -> bool:
        """True when ``n`` (1..max_value) is in the set."""
        return _in_intervals(self.intervals(max_value), n)

    def select(self, sorted_values: Sequence[int], max_value: int | None = None) -> list[int]:
        """The members of ``sorted_values`` (e.g. a mailbox's UIDs) that are in the set.

        ``max_value`` defaults to the last value (``*`` is the highest UID); cost is one
        bisect per interval plus the size of the answer, not the width of the ranges.
        """
        if not sorted_values:
            return []
        top = sorted_values[-1] if max_value is None else max_value
        out: list[int] = []
        for low, high in self.intervals(top):
            start = bisect.bisect_left(sorted_values, low)
            stop = bisect.bisect_right(sorted_values, high)
            out.extend(sorted_values[start:stop])
        return out


def _normal(low: Bound, high: Bound) -> tuple[Bound, Bound]:
    if low is not None and high is not None and low > high:
        return high, low
    if low is None and high is not None:
        return high, None
    return low, high


def _merge(pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(pairs):
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def in_intervals(intervals: list[tuple[int, int]], n: int) -> bool:
    """True when ``n`` lies in one of the sorted disjoint ``intervals`` (from ``intervals()``)."""
    return _in_intervals(intervals, n)


def _in_intervals(intervals: list[tuple[int, int]], n: int) -> bool:
    i = bisect.bisect_right(intervals, (n, MAX_NUMBER + 1)) - 1
    return i >= 0 and intervals[i][0] <= n <= intervals[i][1]
