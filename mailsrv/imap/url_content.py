"""What an IMAP URL names, for CATENATE (RFC 4469) and URLFETCH (RFC 4467, RFC 5524).

``resolve`` checks who may read it: a plain URL only the logged-in user's own messages, a
URLAUTH URL (``urlauth.py``) whoever its access identifier admits, while it has not expired and
its token matches its owner's current access key for the mailbox. Anything wrong raises
``BadUrl`` (the callers answer ``NO [BADURL]`` or ``NIL``); never which check failed, so a URL
reveals nothing about mailboxes its holder may not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.imap_url import BadUrl, ImapUrl, parse_imap_url
from mailsrv.imap.sections import section_bytes
from mailsrv.imap.urlauth import has_urlauth, parse_auth_url, token_matches
from mailsrv.message.structure import parse_message
from mailsrv.store.base import InvalidName, MessageGone, NoSuchFolder, NoSuchUser

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

#: What a bad URL can raise on its way to the message.
URL_FAILURES = (BadUrl, NoSuchFolder, NoSuchUser, InvalidName, MessageGone, CommandFailed)


@dataclass(frozen=True, slots=True)
class Referenced:
    """The whole message a URL points into, and the URL (its section and partial range)."""

    wire: bytes
    url: ImapUrl


async def resolve(s: ImapSession, raw: bytes) -> Referenced:
    """The message ``raw`` names, if the session may read it; raises one of ``URL_FAILURES``."""
    if not has_urlauth(raw):
        url = parse_imap_url(raw)
        if url.user is not None and url.user != s.username.encode("utf-8"):
            raise BadUrl("another user's message without URLAUTH")
        return Referenced(await _read(s, url, s.username), url)
    if not s.ctx.persona.offers("URLAUTH"):
        raise BadUrl("this server has no URLAUTH")
    auth = parse_auth_url(raw)
    if auth.token is None:
        raise BadUrl("a URLAUTH rump is not authorized yet")
    if not auth.access.allows(s.username):
        raise BadUrl("not for this user")
    if auth.expire is not None and auth.expire <= datetime.now(UTC):
        raise BadUrl("expired")
    store = s.ctx.store
    mailbox = await store.open(auth.owner, s.mailbox_name_utf8(auth.target.mailbox or b""))
    key = await store.access_key(auth.owner, mailbox.name, create=False)
    if key is None or not token_matches(auth, key):
        raise BadUrl("not authorized")
    return Referenced(await _read(s, auth.target, auth.owner), auth.target)


async def _read(s: ImapSession, url: ImapUrl, owner: str) -> bytes:
    if url.mailbox is None:
        view = s.view
        if view is None:
            raise BadUrl("relative URL without a selected mailbox")
        mailbox = view.mailbox
    else:
        mailbox = await s.ctx.store.open(owner, s.mailbox_name_utf8(url.mailbox))
    snap = await mailbox.snapshot()
    if url.uidvalidity is not None and url.uidvalidity != snap.uidvalidity:
        raise BadUrl("UIDVALIDITY differs")
    return await mailbox.read(url.uid)


def cut(found: Referenced) -> bytes:
    """The section and partial range the URL names of its message (BODY[section]<partial>)."""
    wire, url = found.wire, found.url
    data = wire
    if url.section is not None:
        part = section_bytes(parse_message(wire, count_lines=False), wire, url.section)
        if part is None:
            raise BadUrl("no such section")
        data = part
    return partial(data, url)


def partial(data: bytes, url: ImapUrl) -> bytes:
    if url.partial is None:
        return data
    start, length = url.partial
    return data[start:] if length is None else data[start : start + length]
