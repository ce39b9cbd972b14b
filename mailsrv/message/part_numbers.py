"""Part numbers: the names IMAP gives the parts of a message (RFC 9051 §6.4.5, ``section-part``).

A multipart's parts are numbered from 1, part 1 of anything that is not a multipart is that
thing itself, and numbers after an encapsulated message (message/rfc822) address the parts of
the message inside it. IMAP's BODY[1.2] and the web console's attachment numbers both come
from here, so they always agree.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailsrv.message.structure import MimePart


def encapsulated(part: MimePart, *, include_global: bool = False) -> MimePart | None:
    """The message inside a message/rfc822 part (and message/global with ``include_global``).

    IMAP4rev1's grammar (RFC 3501 §9 ``media-message``) allows envelope data only for
    message/rfc822; RFC 9051 adds message/global. Dovecot 2.3 treats message/global as an
    opaque part, so by default we do too.
    """
    if part.message is None:
        return None
    if include_global or part.subtype.lower() == b"rfc822":
        return part.message
    return None


def find_part(
    root: MimePart, path: tuple[int, ...], *, include_global: bool = False
) -> MimePart | None:
    """The part that ``path`` (e.g. ``(1, 2)``) names, or None when there is none.

    "Part 1 of a non-multipart is itself" applies once per part: ``1.1`` of a single-part
    message does not exist (Dovecot answers it with an empty string too).
    """
    current = root
    stayed = False
    for depth, number in enumerate(path):
        if depth:
            inner = encapsulated(current, include_global=include_global)
            if inner is not None:
                current, stayed = inner, False
        if current.children:
            if not 1 <= number <= len(current.children):
                return None
            current, stayed = current.children[number - 1], False
        elif number == 1 and not stayed:
            stayed = True
        else:
            return None
    return current


def leaf_parts(root: MimePart) -> Iterator[tuple[tuple[int, ...], MimePart]]:
    """Every part that is not a multipart, in message order, with its part number.

    An encapsulated message counts as one part (its own parts are not listed). A message
    that is not a multipart is its own part 1.
    """
    if not root.children:
        yield (1,), root
        return
    yield from _leaves(root, ())


def _leaves(part: MimePart, path: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], MimePart]]:
    for number, child in enumerate(part.children, 1):
        if child.children:
            yield from _leaves(child, (*path, number))
        else:
            yield (*path, number), child


def part_name(path: tuple[int, ...]) -> str:
    """A part number as IMAP writes it: ``(1, 2)`` -> ``"1.2"``."""
    return ".".join(str(n) for n in path)
