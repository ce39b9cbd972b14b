"""URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524): GENURLAUTH, RESETKEY and URLFETCH.

GENURLAUTH signs rump URLs to the user's own mailboxes with the mailbox's access key (made on
first use); RESETKEY drops keys, revoking every URL made with them; URLFETCH answers each URL
with what it names, or NIL when the URL is bad, expired, revoked or not for this user (RFC 4467
§9.3: a URL that cannot be fetched is no error of the command). With RFC 5524's parameters a
URL is answered ``(BODYPARTSTRUCTURE (...) BINARY <data>)`` (or ``BODY <data>``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap.bodystructure import body_structure
from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import GenUrlauth, ResetKey, UrlFetch, UrlFetchItem
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.imap_url import BadUrl
from mailsrv.imap.responses import untagged
from mailsrv.imap.sections import binary_section, decoded_entity
from mailsrv.imap.strings import astring, literal
from mailsrv.imap.url_content import URL_FAILURES, Referenced, cut, partial, resolve
from mailsrv.imap.urlauth import INTERNAL, authorized_form, parse_auth_url
from mailsrv.message.part_numbers import find_part
from mailsrv.message.structure import MimePart, parse_message
from mailsrv.message.transfer_encoding import UnknownTransferEncoding
from mailsrv.store.base import NoSuchFolder

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

HANDLERS = CommandRegistry()


@HANDLERS.on(GenUrlauth)
async def genurlauth(s: ImapSession, cmd: GenUrlauth) -> None:
    signed = []
    for raw, mechanism in cmd.urls:
        if mechanism != INTERNAL:
            raise CommandFailed("NO", f"Unsupported URLAUTH mechanism {mechanism}")
        try:
            auth = parse_auth_url(raw)
        except BadUrl as exc:
            raise CommandFailed("BAD", f"Invalid URL: {exc}") from None
        if auth.token is not None:
            raise CommandFailed("BAD", "Invalid URL: already authorized")
        if auth.owner != s.username:
            raise CommandFailed("NO", "Only URLs to the user's own mailboxes can be authorized")
        name = s.mailbox_name_utf8(auth.target.mailbox or b"")
        try:
            mailbox = await s.ctx.store.open(s.username, name)
        except NoSuchFolder:
            raise CommandFailed("NO", "Mailbox doesn't exist", "NONEXISTENT") from None
        key = await s.ctx.store.access_key(s.username, mailbox.name, create=True)
        if key is None:  # pragma: no cover - create=True always gives one
            raise CommandFailed("NO", "No access key", "SERVERBUG")
        signed.append(astring(authorized_form(auth.rump, key)))
    s.out.write(untagged(b"GENURLAUTH " + b" ".join(signed)))
    await s.ok(cmd.tag, "Genurlauth completed.")


@HANDLERS.on(ResetKey)
async def resetkey(s: ImapSession, cmd: ResetKey) -> None:
    unknown = [m for m in cmd.mechanisms if m != INTERNAL]
    if unknown:
        raise CommandFailed("NO", f"Unsupported URLAUTH mechanism {unknown[0]}")
    if cmd.mailbox is None:
        await s.ctx.store.reset_access_keys(s.username)
    else:
        try:
            mailbox = await s.ctx.store.open(s.username, s.mailbox_name(cmd.mailbox))
        except NoSuchFolder:
            raise CommandFailed("NO", "Mailbox doesn't exist", "NONEXISTENT") from None
        await s.ctx.store.reset_access_keys(s.username, mailbox.name)
    await s.ok(cmd.tag, "Resetkey completed.")


@HANDLERS.on(UrlFetch)
async def urlfetch(s: ImapSession, cmd: UrlFetch) -> None:
    out = [b"URLFETCH"]
    for item in cmd.items:
        out += (b" ", astring(item.url), b" ")
        try:
            found = await resolve(s, item.url)
            out.append(_answer(item, found))
        except (*URL_FAILURES, UnknownTransferEncoding):
            out.append(b"NIL")
    s.out.write(untagged(b"".join(out)))
    await s.ok(cmd.tag, "Urlfetch completed.")


def _answer(item: UrlFetchItem, found: Referenced) -> bytes:
    """The data of one URL: a literal, or RFC 5524's parenthesized items."""
    if not item.extended:
        return literal(cut(found))
    parts: list[bytes] = []
    if item.bodypartstructure or item.body == "BINARY":
        url = found.url
        section = url.section
        if section is not None and (section.text or section.fields):
            raise BadUrl("BINARY and BODYPARTSTRUCTURE need a MIME part")
        number = () if section is None else section.part
        root = parse_message(found.wire)
        if item.bodypartstructure:
            parts.append(b"BODYPARTSTRUCTURE " + _structure(item, found.wire, root, number))
        if item.body == "BINARY":
            data = partial(binary_section(root, found.wire, number), url)
            prefix = b"~{%d}\r\n" if b"\0" in data else b"{%d}\r\n"
            parts.append(b"BINARY " + prefix % len(data) + data)
    if item.body == "BODY":
        parts.append(b"BODY " + literal(cut(found)))
    return b"(" + b" ".join(parts) + b")"


def _structure(item: UrlFetchItem, wire: bytes, root: MimePart, number: tuple[int, ...]) -> bytes:
    """The part's extended BODYSTRUCTURE; with BINARY, of the decoded data BINARY returns."""
    if item.body == "BINARY":
        entity = decoded_entity(root, wire, number)
        part = None if entity is None else parse_message(entity)
    else:
        part = root if not number else find_part(root, number)
    if part is None:
        raise BadUrl("no such part")
    return body_structure(part, extended=True)
