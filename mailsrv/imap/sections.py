"""FETCH BODY[section] and BINARY[section] (RFC 3501 §6.4.5, RFC 3516, RFC 9051 §6.4.5).

Part numbers name parts as ``mailsrv.message.part_numbers`` does (the web console uses the
same numbers); ``rev2`` (IMAP4rev2 enabled) makes message/global encapsulating too. HEADER,
TEXT and HEADER.FIELDS after a part number need a message/rfc822 part. A section that does
not exist gives None: Dovecot answers it with an empty string (``BODY[9] {0}``), which is
what the session should send.
"""

from __future__ import annotations

from mailsrv.imap.tokens import SectionSpec
from mailsrv.message.part_numbers import encapsulated, find_part
from mailsrv.message.structure import MimePart
from mailsrv.message.transfer_encoding import IDENTITY, decode


def section_bytes(
    root: MimePart, wire: bytes, spec: SectionSpec, *, rev2: bool = False
) -> bytes | None:
    """The bytes of ``BODY[spec]`` for the message ``wire`` parsed as ``root``."""
    if not spec.part:
        target: MimePart | None = root
        if spec.text == "":
            return wire
    else:
        part = find_part(root, spec.part, include_global=rev2)
        if part is None:
            return None
        if spec.text == "":
            return part.body(wire)
        if spec.text == "MIME":
            return part.header(wire)
        target = encapsulated(part, include_global=rev2)
    if target is None:
        return None
    if spec.text == "HEADER":
        return target.header(wire)
    if spec.text == "TEXT":
        return target.body(wire)
    if spec.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        return header_fields(target, wire, spec.fields, exclude=spec.text == "HEADER.FIELDS.NOT")
    return None


def header_fields(
    part: MimePart, wire: bytes, names: tuple[str, ...], *, exclude: bool = False
) -> bytes:
    """HEADER.FIELDS (or .NOT): the matching fields in their original order and folding,
    then the blank line. Names compare case-insensitively.

    Headers without their blank line are answered as Dovecot answers them: a header cut off
    mid-line at the end of the message gets its last field CRLF-terminated and no blank line
    (a lone blank line when nothing matched); a header that simply stops (at the end or at a
    boundary) gets the blank line, except HEADER.FIELDS.NOT with nothing left is empty.
    """
    wanted = {name.upper() for name in names}
    out: list[bytes] = []
    for f in part.fields:
        if (f.name.decode("latin-1").upper() in wanted) != exclude:
            raw = wire[f.start : f.end]
            out.append(raw if raw.endswith(b"\n") else raw + b"\r\n")
    if part.header_ended or not part.fields:
        add_blank = True
    elif not wire[part.fields[-1].start : part.fields[-1].end].endswith(b"\n"):
        add_blank = not out  # cut off mid-line
    else:
        add_blank = bool(out) or not exclude
    if add_blank:
        out.append(b"\r\n")
    return b"".join(out)


def _decoded_range(
    part: MimePart, wire: bytes, start: int, end: int, *, rewrite: bool = True
) -> bytes:
    """wire[start:end] with the body of every encoded leaf inside it transfer-decoded and
    (``rewrite``) its Content-Transfer-Encoding field saying ``binary`` (as Dovecot rewrites
    it)."""
    pieces: list[bytes] = []
    pos = start
    for p in part.walk():
        if p.children or p.message is not None or p.start < pos or p.end > end:
            continue
        encoding = p.transfer_encoding
        if encoding in IDENTITY:
            continue
        decoded = decode(p.body(wire), encoding)
        for f in p.fields if rewrite else ():
            if f.name.lower() == b"content-transfer-encoding" and f.start >= pos:
                colon = wire.index(b":", f.start, f.end)
                pieces += [
                    wire[pos : colon + 1],
                    b" binary",
                    wire[f.end - _eol(wire, f.end) : f.end],
                ]
                pos = f.end
                break
        pieces.append(wire[pos : p.body_start])
        pieces.append(decoded)
        pos = p.end
    pieces.append(wire[pos:end])
    return b"".join(pieces)


def _eol(wire: bytes, end: int) -> int:
    """The length of the line end just before ``end`` (0, 1 or 2)."""
    if wire[end - 2 : end] == b"\r\n":
        return 2
    return 1 if wire[end - 1 : end] == b"\n" else 0


def binary_section(
    root: MimePart, wire: bytes, part: tuple[int, ...], *, rev2: bool = False
) -> bytes:
    """``BINARY[part]`` (RFC 3516): the part's body with its transfer encoding undone.

    ``BINARY[]`` is the whole message with every leaf decoded; a missing part gives b""
    (as Dovecot); an encoding we cannot undo raises UnknownTransferEncoding.
    """
    if not part:
        return _decoded_range(root, wire, 0, len(wire))
    found = find_part(root, part, include_global=rev2)
    if found is None:
        return b""
    if found.children or found.message is not None:
        return _decoded_range(found, wire, found.body_start, found.end)
    return decode(found.body(wire), found.transfer_encoding)


def decoded_entity(root: MimePart, wire: bytes, part: tuple[int, ...]) -> bytes | None:
    """The part, its MIME header included, with every body in it transfer-decoded but every
    header kept as written: what URLFETCH's BODYPARTSTRUCTURE describes next to BINARY (RFC
    5524), so that its sizes and line counts are those of the decoded data (as Dovecot's).
    None when there is no such part."""
    found = root if not part else find_part(root, part)
    if found is None:
        return None
    head = wire[found.start : found.body_start] if part else b""
    if found.children or found.message is not None or not part:
        start = found.body_start if part else 0
        return head + _decoded_range(found, wire, start, found.end, rewrite=False)
    return head + decode(found.body(wire), found.transfer_encoding)


def binary_size(root: MimePart, wire: bytes, part: tuple[int, ...], *, rev2: bool = False) -> int:
    """``BINARY.SIZE[part]``: the length of what ``binary_section`` returns."""
    return len(binary_section(root, wire, part, rev2=rev2))
