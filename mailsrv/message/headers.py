"""Header fields in wire form, with their offsets (RFC 5322 §2.2, §3.6).

A header ends at its first empty line, at the first line that starts with an open boundary
delimiter, or where its part ends; ``read_header`` splits it into ``HeaderField`` values with
wire offsets, and ``parse_header_fields`` does it for a message's own header. Nothing here
raises on bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailsrv.message.delimiters import match_boundary

_BLANK_LINE = re.compile(rb"\n(\r?\n)")
# A header field: the first line (name, colon, rest) and its continuation lines.
_FIELD = re.compile(rb"([^:\n]*)(:?)([^\n]*(?:\n|\Z)(?:[ \t][^\n]*(?:\n|\Z))*)")


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field: ``name`` as written, ``value`` after the colon (raw, folding kept).

    ``start``/``end`` are wire offsets of the whole field, its line end(s) included.
    """

    name: bytes
    value: bytes
    start: int
    end: int


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
    block = wire[start:end]
    if b"\n " not in block and b"\n\t" not in block:
        simple = _unfolded_fields(block, start)
        if simple is not None:
            return simple
    return _matched_fields(wire, start, end)


def _matched_fields(wire: bytes, start: int, end: int) -> tuple[HeaderField, ...]:
    """``_fields`` for any header: a regular-expression match per field."""
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


def _unfolded_fields(block: bytes, offset: int) -> tuple[HeaderField, ...] | None:
    """``_fields`` for a header without continuation lines in which every line has a colon
    (nearly every header): one split instead of a regular-expression match per field; None
    when a line has no colon (then the general path decides)."""
    fields: list[HeaderField] = []
    pos = offset
    lines = block.split(b"\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if i == last:
            if not line:
                break  # the block ended with its line end
            size = len(line)
        else:
            size = len(line) + 1
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        if i != last and value.endswith(b"\r"):
            value = value[:-1]
        fields.append(HeaderField(name.rstrip(b" \t"), value, pos, pos + size))
        pos += size
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


def parse_header_fields(
    wire: bytes, start: int = 0, end: int | None = None
) -> tuple[tuple[HeaderField, ...], int, bool]:
    """Parse the header at ``start``: (fields, body start, whether a blank line ended it)."""
    stop = len(wire) if end is None else end
    fields, body_start, ended, _ = read_header(wire, start, stop, ())
    return fields, body_start, ended
