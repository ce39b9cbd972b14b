"""The MIME structure of a message in wire form, as byte offsets (RFC 2045, RFC 2046, RFC 5322).

``parse_message(wire)`` walks the message once, line by line where it must, and returns a tree
of ``MimePart``: where each part's header and body start and end, its parsed header fields and
the Content-* values FETCH BODYSTRUCTURE needs. Nothing is copied but the header values.

Multipart bodies are split the way Dovecot splits them, so our FETCH answers match its answers
byte for byte: a delimiter is any line that *starts with* ``--boundary`` (RFC 2046 §5.1.1 allows
only whitespace after it, real mail has worse), the innermost open boundary is tried first, a
boundary of an enclosing multipart also ends every part inside it (so a missing close
delimiter costs nothing), and the CRLF before a delimiter belongs to the delimiter. A
multipart whose boundary never shows up holds one empty text/plain part, as in Dovecot.

Nothing here raises on bad input: every byte string is some message. The byte scanning (header
fields) lives in ``headers.py``, the delimiter search in ``delimiters.py``, the Content-*
values in ``content_info.py``; ``part_numbers.py`` names the parts of the tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailsrv.message.content_fields import Params, param
from mailsrv.message.content_info import ContentInfo, content_info
from mailsrv.message.delimiters import before_crlf, find_delimiter, line_end, match_boundary
from mailsrv.message.headers import HeaderField, read_header

#: Deeper nesting than this is kept as an opaque leaf (a defence against crafted messages).
MAX_DEPTH = 100
#: Parts beyond this many in one message are not split out (the rest stays in the last body).
MAX_PARTS = 10_000

_ENCAPSULATING = (b"rfc822", b"global")
#: The types whose ``lines`` are counted: BODYSTRUCTURE shows body-fld-lines only for these.
_LINE_COUNTED = (b"text", b"message")
_IDENTITY_ENCODINGS = (b"", b"7bit", b"8bit", b"binary")


@dataclass(frozen=True, slots=True)
class MimePart:
    """One MIME part (or a whole message): offsets into the wire bytes and its Content-* data.

    ``start``..``body_start`` is the header (its blank line included when there is one),
    ``body_start``..``end`` the body. ``type``/``subtype`` keep their case as written;
    ``mime_type`` gives the lower-case form for comparisons.
    """

    start: int
    body_start: int
    end: int
    fields: tuple[HeaderField, ...]
    header_ended: bool  # False when the header ran to the end without its blank line
    type: bytes
    subtype: bytes
    params: Params
    defaulted: bool  # True when there was no Content-Type (the RFC 2045/2046 default applied)
    encoding: bytes | None
    content_id: bytes | None
    description: bytes | None
    md5: bytes | None
    disposition: tuple[bytes, Params] | None
    language: tuple[bytes, ...] | None
    location: bytes | None
    lines: int  # LFs in the body, counted for text/* and message/* parts only (else 0)
    children: tuple[MimePart, ...] = ()
    message: MimePart | None = field(default=None)

    @property
    def mime_type(self) -> str:
        return (self.type + b"/" + self.subtype).decode("latin-1").lower()

    @property
    def is_multipart(self) -> bool:
        return self.type.lower() == b"multipart"

    @property
    def is_text(self) -> bool:
        return self.type.lower() == b"text"

    @property
    def body_size(self) -> int:
        return self.end - self.body_start

    @property
    def charset(self) -> str | None:
        value = param(self.params, "charset")
        return None if value is None else value.decode("latin-1")

    @property
    def transfer_encoding(self) -> str:
        """The Content-Transfer-Encoding in lower case, ``7bit`` when absent."""
        return (self.encoding or b"7bit").decode("latin-1").lower()

    def header(self, wire: bytes) -> bytes:
        return wire[self.start : self.body_start]

    def body(self, wire: bytes) -> bytes:
        return wire[self.body_start : self.end]

    def get(self, name: str) -> bytes | None:
        """The raw value of the first field called ``name`` (case-insensitive), or None."""
        wanted = name.lower().encode()
        for f in self.fields:
            if f.name.lower() == wanted:
                return f.value
        return None

    def get_all(self, name: str) -> list[bytes]:
        wanted = name.lower().encode()
        return [f.value for f in self.fields if f.name.lower() == wanted]

    def walk(self) -> list[MimePart]:
        """This part and every part inside it, depth first (encapsulated messages included)."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        if self.message is not None:
            out.extend(self.message.walk())
        return out


def parse_message(wire: bytes, *, count_lines: bool = True) -> MimePart:
    """Parse a whole message (RFC 5322 header + MIME body); never raises.

    With ``count_lines=False`` every part's ``lines`` is 0 (for callers that never look).
    """
    parser = _Parser(wire, count_lines)
    part, _ = parser.part(0, len(wire), (), default_digest=False, depth=0)
    return part


def defects(root: MimePart, wire: bytes) -> int:
    """How many multiparts in the message could not be split: no boundary parameter, or a
    boundary that never shows up in the body (RFC 2046 §5.1.1). 0 for well-formed mail."""
    count = 0
    for part in root.walk():
        if part.is_multipart:
            boundary = param(part.params, "boundary")
            if not boundary or b"--" + boundary not in part.body(wire):
                count += 1
    return count


class _Parser:
    """One parse: the recursion over parts keeps the stack of open boundaries."""

    def __init__(self, wire: bytes, count_lines: bool = True) -> None:
        self.wire = wire
        self.count_lines = count_lines
        self.count = 0
        # boundary -> (searched from, next "\n--boundary" at or after it, -1 for none):
        # each boundary's occurrences are found with one forward scan over the whole parse.
        self._found: dict[bytes, tuple[int, int]] = {}

    def part(
        self,
        start: int,
        stop: int,
        boundaries: tuple[bytes, ...],
        *,
        default_digest: bool,
        depth: int,
    ) -> tuple[MimePart, int]:
        """Parse a part at ``start``; returns it and the offset of the line that ended it.

        The part ends at ``stop`` or at a line matching one of ``boundaries`` (the CRLF
        before that line is not part of it).
        """
        self.count += 1
        wire = self.wire
        fields, body_start, ended, at_boundary = read_header(wire, start, stop, boundaries)
        info = content_info(fields, default_digest)
        kind = info.type.lower(), info.subtype.lower()
        boundary = param(info.params, "boundary") if kind[0] == b"multipart" else None
        children: tuple[MimePart, ...] = ()
        message: MimePart | None = None
        too_deep = depth >= MAX_DEPTH or self.count >= MAX_PARTS
        if at_boundary:
            end, next_line = body_start, body_start
            if kind[0] == b"multipart" and not too_deep:
                children = (_empty_text(body_start),)
        elif kind[0] == b"multipart" and not too_deep:
            if boundary:
                children, end, next_line = self._multipart(
                    body_start, stop, (b"--" + boundary)[2:], boundaries, kind[1], depth
                )
            else:
                end, next_line = self._leaf_end(body_start, stop, boundaries, start)
                children = (_empty_text(body_start),)
        elif (
            kind[0] == b"message"
            and kind[1] in _ENCAPSULATING
            and not too_deep
            and (info.encoding or b"").lower() in _IDENTITY_ENCODINGS
        ):
            message, next_line = self.part(
                body_start, stop, boundaries, default_digest=False, depth=depth + 1
            )
            end = message.end
        else:
            end, next_line = self._leaf_end(body_start, stop, boundaries, start)
        if ended and body_start > end:
            # The blank line is also the CRLF before the next delimiter: the part is empty.
            body_start = end = max(start, end)
            fields = ()
        lines = 0
        if self.count_lines and kind[0] in _LINE_COUNTED:
            lines = self._lines(body_start, end, () if message is None else (message,))
        part = _new_part(
            info,
            start=start,
            body_start=body_start,
            end=end,
            fields=fields,
            header_ended=ended,
            lines=lines,
            children=children,
            message=message,
        )
        return part, next_line

    def _leaf_end(
        self, pos: int, stop: int, boundaries: tuple[bytes, ...], part_start: int
    ) -> tuple[int, int]:
        """Where a leaf body starting at ``pos`` ends: (body end, start of the ending line).

        The end may fall before ``pos`` when the header's blank line is the CRLF that
        belongs to the next delimiter; the caller makes that part empty.
        """
        if not boundaries:
            return stop, stop
        line = self._next_boundary_line(pos, stop, boundaries, first=True)
        if line < 0:
            return stop, stop
        return before_crlf(self.wire, line, part_start), line

    def _next_boundary_line(
        self, pos: int, stop: int, boundaries: tuple[bytes, ...], *, first: bool
    ) -> int:
        """The start of the next line at or after ``pos`` matching a boundary, or -1."""
        wire = self.wire
        if first and match_boundary(wire, pos, boundaries) >= 0:
            return pos
        best = -1
        for b in boundaries:
            hit = self._find(b, pos)
            if hit >= 0 and hit + 3 <= stop and (best < 0 or hit < best):
                best = hit
        return -1 if best < 0 else best + 1

    def _find(self, boundary: bytes, pos: int) -> int:
        """Offset of the next ``\\n--boundary`` at or after ``pos``, or -1 (memoized)."""
        known = self._found.get(boundary)
        if known is not None:
            since, hit = known
            if since <= pos and (hit < 0 or hit >= pos):
                return hit
        hit = find_delimiter(self.wire, b"\n--" + boundary, pos)
        self._found[boundary] = (pos, hit)
        return hit

    def _lines(self, start: int, end: int, inner: tuple[MimePart, ...]) -> int:
        """Line ends in ``start``..``end``, reusing the counts of the parts inside it."""
        wire = self.wire
        total, pos = 0, start
        for p in inner:
            if p.type.lower() not in _LINE_COUNTED:
                continue
            if not pos <= p.start <= p.body_start <= p.end <= end:
                return wire.count(b"\n", start, end)
            total += wire.count(b"\n", pos, p.body_start) + p.lines
            pos = p.end
        return total + wire.count(b"\n", pos, end)

    def _multipart(
        self,
        body_start: int,
        stop: int,
        boundary: bytes,
        outer: tuple[bytes, ...],
        subtype: bytes,
        depth: int,
    ) -> tuple[tuple[MimePart, ...], int, int]:
        """Split a multipart body: (children, body end, start of the line that ended it)."""
        wire = self.wire
        stack = (boundary, *outer)
        children: list[MimePart] = []
        line = self._next_boundary_line(body_start, stop, stack, first=True)
        while line >= 0:
            which = match_boundary(wire, line, stack)
            if which > 0:  # an enclosing multipart's delimiter ends this one too
                return _or_empty(children, body_start), before_crlf(wire, line, body_start), line
            after = line + 2 + len(boundary)
            if wire.startswith(b"--", after) or self.count >= MAX_PARTS:
                # close delimiter: the epilogue runs to an outer delimiter or the end
                end_of_line = line_end(wire, line, stop)
                if not outer:
                    return _or_empty(children, body_start), stop, stop
                nxt = self._next_boundary_line(end_of_line, stop, outer, first=True)
                if nxt < 0:
                    return _or_empty(children, body_start), stop, stop
                # The close delimiter keeps its own line end even when the next line is
                # an outer delimiter (Dovecot counts it in this part's size).
                end = before_crlf(wire, nxt, end_of_line)
                return _or_empty(children, body_start), end, nxt
            child_start = line_end(wire, line, stop)
            child, line = self.part(
                child_start, stop, stack, default_digest=subtype == b"digest", depth=depth + 1
            )
            children.append(child)
            if line >= stop:
                return tuple(children), stop, stop
        return _or_empty(children, body_start), stop, stop


def _or_empty(children: list[MimePart], at: int) -> tuple[MimePart, ...]:
    return tuple(children) if children else (_empty_text(at),)


def _empty_text(at: int) -> MimePart:
    return _new_part(content_info((), False), start=at, body_start=at, end=at)


def _new_part(
    info: ContentInfo,
    *,
    start: int,
    body_start: int,
    end: int,
    fields: tuple[HeaderField, ...] = (),
    header_ended: bool = False,
    lines: int = 0,
    children: tuple[MimePart, ...] = (),
    message: MimePart | None = None,
) -> MimePart:
    return MimePart(
        start=start,
        body_start=body_start,
        end=end,
        fields=fields,
        header_ended=header_ended,
        type=info.type,
        subtype=info.subtype,
        params=info.params,
        defaulted=info.defaulted,
        encoding=info.encoding,
        content_id=info.content_id,
        description=info.description,
        md5=info.md5,
        disposition=info.disposition,
        language=info.language,
        location=info.location,
        lines=lines,
        children=children,
        message=message,
    )
