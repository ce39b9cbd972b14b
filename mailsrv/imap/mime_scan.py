"""Byte scanning for the MIME parser (``mime.py``): header fields and boundary delimiters.

A header ends at its first empty line, at the first line that starts with an open boundary
delimiter, or where its part ends; ``read_header`` splits it into ``HeaderField`` values with
wire offsets. ``find_delimiter`` finds the next ``\\n--boundary`` in a body much faster than a
plain substring search, and ``before_crlf`` gives the end of a part before the line end that
belongs to the delimiter after it. Nothing here raises on bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BLANK_LINE = re.compile(rb"\n(\r?\n)")
# A header field: the first line (name, colon, rest) and its continuation lines.
_FIELD = re.compile(rb"([^:\n]*)(:?)([^\n]*(?:\n|\Z)(?:[ \t][^\n]*(?:\n|\Z))*)")
#: Dashes ``find_delimiter`` looks at before it leaves the search to ``bytes.find``.
DASH_TRIES = 32


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: ``name`` as written, ``value`` after the colon (raw, folding kept).

    ``start``/``end`` are wire offsets of the whole field, its line end(s) included.
    """

    name: bytes
    value: bytes
    start: int
    end: int


def line_end(wire: bytes, pos: int, stop: int) -> int:
    nl = wire.find(b"\n", pos, stop)
    return stop if nl < 0 else nl + 1


def match_boundary(wire: bytes, pos: int, boundaries: tuple[bytes, ...]) -> int:
    """Index of the innermost boundary the line at ``pos`` starts with, or -1."""
    if wire[pos : pos + 2] != b"--":
        return -1
    for i, b in enumerate(boundaries):
        if wire.startswith(b, pos + 2):
            return i
    return -1


def read_header(
    wire: bytes, start: int, stop: int, boundaries: tuple[bytes, ...]
) -> tuple[tuple[HeaderField, ...], int, bool, bool]:
    """Header fields from ``start``: (fields, body start, blank line seen, stopped at boundary).

    The header ends at the first empty line, at the first line that starts with a boundary
    delimiter, or at ``stop``. Every line not starting with SP/TAB starts a field (so does the
    first line, whatever it starts with); the lines after it that do are its continuation.
    """
    if wire.startswith(b"\r\n", start) and start + 2 <= stop:
        blank, blank_len = start, 2
    elif wire.startswith(b"\n", start) and start < stop:
        blank, blank_len = start, 1
    else:
        m = _BLANK_LINE.search(wire, start, stop)
        blank, blank_len = (m.start() + 1, len(m.group(1))) if m else (-1, 0)
    limit = stop if blank < 0 else blank
    at = _boundary_line(wire, start, limit, boundaries) if boundaries else -1
    if at >= 0:
        return _fields(wire, start, at), at, False, True
    if blank >= 0:
        return _fields(wire, start, blank), blank + blank_len, True, False
    return _fields(wire, start, stop), stop, False, False


def _boundary_line(wire: bytes, start: int, limit: int, boundaries: tuple[bytes, ...]) -> int:
    """The first line starting in ``start``..``limit`` that matches a boundary, or -1."""
    if start < limit and match_boundary(wire, start, boundaries) >= 0:
        return start
    best = -1
    for b in boundaries:
        hit = wire.find(b"\n--" + b, start, limit + 2 + len(b))
        if hit >= 0 and hit + 1 < limit and (best < 0 or hit < best):
            best = hit
    return -1 if best < 0 else best + 1


def _fields(wire: bytes, start: int, end: int) -> tuple[HeaderField, ...]:
    """The fields of the header lines in ``start``..``end``."""
    fields: list[HeaderField] = []
    for m in _FIELD.finditer(wire, start, end):
        field_start, field_end = m.span()
        if field_start >= end:
            break
        if m.group(2):  # the usual "Name: value"
            value = m.group(3)
            if value.endswith(b"\n"):
                value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
            fields.append(HeaderField(m.group(1).rstrip(b" \t"), value, field_start, field_end))
        else:  # no colon on the first line: the name is the whole line
            _close(fields, wire, m.group(1).rstrip(b"\r\n"), field_start, field_end)
    return tuple(fields)


def _close(fields: list[HeaderField], wire: bytes, name: bytes, start: int, end: int) -> None:
    if start < 0:
        return
    raw = wire[start:end]
    colon = raw.find(b":")
    value = raw[colon + 1 :] if colon >= 0 else b""
    if value.endswith(b"\n"):
        value = value[:-2] if value.endswith(b"\r\n") else value[:-1]
    fields.append(HeaderField(name, value, start, end))


def find_delimiter(wire: bytes, needle: bytes, pos: int) -> int:
    """``wire.find(needle, pos)`` for a ``\\n--boundary`` needle, usually much faster.

    Every occurrence has a ``-`` right after its line end, and a search for one byte is a
    memchr: bodies without dashes (base64 attachments, the bulk of a big message) are skipped
    at memory speed instead of being walked by the general substring search. After
    ``DASH_TRIES`` dashes that start no delimiter (text full of ``---``), the general search
    takes over from there.
    """
    dash = pos  # an occurrence at s >= pos has its first dash at s + 1 > pos
    for _ in range(DASH_TRIES):
        dash = wire.find(b"-", dash + 1)
        if dash < 0:
            return -1
        if wire.startswith(needle, dash - 1):
            return dash - 1
    return wire.find(needle, dash)  # occurrences not yet ruled out start at dash or later


def before_crlf(wire: bytes, line: int, floor: int) -> int:
    """The offset before the line end that precedes ``line`` (not below ``floor``)."""
    if line >= 2 and wire[line - 2 : line] == b"\r\n":
        return max(floor, line - 2)
    if line >= 1 and wire[line - 1 : line] == b"\n":
        return max(floor, line - 1)
    return max(floor, line)
