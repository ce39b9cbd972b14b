"""Finding multipart boundary delimiters in a message's wire form (RFC 2046 §5.1.1).

``structure.py`` splits multipart bodies with these: ``match_boundary`` says which open
boundary a line starts with, ``find_delimiter`` finds the next ``\\n--boundary`` in a body much
faster than a plain substring search, and ``before_crlf`` gives the end of a part before the
line end that belongs to the delimiter after it. Nothing here raises on bad input.
"""

from __future__ import annotations

#: Dashes ``find_delimiter`` looks at before it leaves the search to ``bytes.find``.
DASH_TRIES = 32


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
