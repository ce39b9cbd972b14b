"""The STATUS answer for one folder (RFC 9051 §6.3.11, RFC 8438 STATUS=SIZE, RFC 9208
DELETED-STORAGE), used by STATUS and by LIST's RETURN (STATUS ...) (RFC 5819)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap.mailbox_names import encode_name
from mailsrv.imap.mailbox_view import MailboxView
from mailsrv.imap.object_ids import mailbox_id
from mailsrv.store.base import DELETED, SEEN, FolderSnapshot

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession


def status_values(
    snap: FolderSnapshot, items: tuple[str, ...], recent: int
) -> list[tuple[str, int]]:
    """(item, value) pairs of a STATUS answer (RFC 9051 §6.3.11, RFC 8438 SIZE, RFC 9208)."""
    out = []
    for item in items:
        if item == "MESSAGES":
            value = len(snap.messages)
        elif item == "UIDNEXT":
            value = snap.uidnext
        elif item == "UIDVALIDITY":
            value = snap.uidvalidity
        elif item == "UNSEEN":
            value = sum(1 for m in snap.messages if SEEN not in m.flags)
        elif item == "DELETED":
            value = sum(1 for m in snap.messages if DELETED in m.flags)
        elif item == "SIZE":
            value = sum(m.size for m in snap.messages)
        elif item == "DELETED-STORAGE":  # RFC 9208: what EXPUNGE would free, in octets
            value = sum(m.size for m in snap.messages if DELETED in m.flags)
        elif item == "HIGHESTMODSEQ":
            value = snap.highestmodseq
        elif item == "MAILBOXID":
            value = 0  # a placeholder status_line replaces with the id
        else:
            value = recent
        out.append((item, value))
    return out


async def status_line(s: ImapSession, name: str, items: tuple[str, ...]) -> bytes:
    mailbox = await s.ctx.store.open(s.username, name)
    snap = await mailbox.snapshot()
    recent = 0
    if "RECENT" in items:
        view = s.view
        if view is not None and view.name == mailbox.name:
            recent = len(view.recent)
        else:
            probe = MailboxView(s.shared.views, s.ctx.store, mailbox, snap, readonly=True)
            recent = len(probe.recent)
    values = " ".join(
        f"{k} ({mailbox_id(snap)})" if k == "MAILBOXID" else f"{k} {v}"  # RFC 8474 §4
        for k, v in status_values(snap, items, recent)
    )
    return b"* STATUS " + encode_name(mailbox.name, utf8=s.utf8) + f" ({values})\r\n".encode()
