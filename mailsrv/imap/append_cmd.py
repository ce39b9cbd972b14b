"""APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), APPENDUID
(RFC 4315) and the quota check (RFC 9208: ``NO [OVERQUOTA]``).

Every message of one command is built first (CATENATE's URL parts read from the user's own
mailboxes), then checked against the quota as a whole, then handed to the store at once
(``Store.deliver_all``): a failure anywhere, a bad URL in the second message or a crash of the
server, leaves none of them in the mailbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap.binary_append import base64_binary_parts
from mailsrv.imap.commands import Append, AppendMessage, CatenateText, CatenateUrl
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.sequence_set import SequenceSet
from mailsrv.imap.url_content import URL_FAILURES, cut, resolve
from mailsrv.message.wire import to_wire
from mailsrv.store.base import EventKind, NewMessage, NoSuchFolder

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession


async def append(s: ImapSession, cmd: Append) -> None:
    name = s.mailbox_name(cmd.mailbox)
    store, user = s.ctx.store, s.username
    try:
        mailbox = await store.open(user, name)
    except NoSuchFolder:
        raise CommandFailed("NO", "Mailbox doesn't exist", "TRYCREATE") from None
    messages = []
    for message in cmd.messages:
        data = to_wire(await _content(s, message))
        if not data:
            raise CommandFailed("NO", "Can't save a zero byte message")
        flags = frozenset(f for f in message.flags if f != "\\Recent")
        messages.append(NewMessage(data, flags, message.internal_date))
    octets = sum(len(m.data) for m in messages)
    with await s.ctx.quota.reserve([user], octets, len(messages), mailbox.name):
        uids = await store.deliver_all(user, mailbox.name, messages, s.id, EventKind.APPENDED)
    view = s.view
    if view is not None and view.name == mailbox.name:
        uidvalidity = view.uidvalidity
    else:
        uidvalidity = (await mailbox.snapshot()).uidvalidity
    uid_set = SequenceSet.from_values(uids)
    code = f"APPENDUID {uidvalidity} {uid_set}" if s.ctx.persona.offers("UIDPLUS") else None
    await s.ok(cmd.tag, "Append completed.", code)


async def _content(s: ImapSession, message: AppendMessage) -> bytes:
    """The message's bytes: its literal, or its CATENATE parts joined (RFC 4469 §3)."""
    if isinstance(message.message, bytes):
        return base64_binary_parts(message.message) if message.binary else message.message
    limit = s.ctx.config.limits.message_size
    pieces: list[bytes] = []
    size = 0
    for part in message.message:
        if isinstance(part, CatenateText):
            piece = part.text
        else:
            piece = await _url_content(s, part)
        size += len(piece)
        if size > limit:  # RFC 4469 §5: the result would be over the limit
            raise CommandFailed("NO", "Message too large", "TOOBIG")
        pieces.append(piece)
    data = b"".join(pieces)
    return base64_binary_parts(data) if any(_binary(p) for p in message.message) else data


def _binary(part: CatenateText | CatenateUrl) -> bool:
    return isinstance(part, CatenateText) and part.binary


async def _url_content(s: ImapSession, part: CatenateUrl) -> bytes:
    """What a URL part names, or ``NO [BADURL url]`` (RFC 4469 §5); a URLAUTH URL may name
    another user's message (RFC 4469 §4, RFC 4467)."""
    try:
        return cut(await resolve(s, part.url))
    except URL_FAILURES:
        pass
    url = part.url.decode("ascii", "replace")
    if not url.isprintable() or "]" in url or len(url) > 400:
        url = "..."
    raise CommandFailed("NO", "Bad URL in CATENATE", f"BADURL {url}")
