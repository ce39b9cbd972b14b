"""Gmail's labels over mailsrv's folders: FETCH X-GM-LABELS and STORE X-GM-LABELS (X-GM-EXT-1).

On Gmail a label is a folder: a message with the label ``Work`` is listed in the ``Work``
folder, and one in INBOX has the ``\\Inbox`` label. mailsrv keeps it that way round, with real
folders: a message's labels are the folders holding a copy of it (the same X-GM-MSGID,
``gmail_ids.py``), named as Gmail names them (INBOX ``\\Inbox``, the ``\\Sent`` folder ``\\Sent``,
``\\Drafts`` ``\\Draft``, ``\\Flagged`` (Starred) ``\\Starred``, ``\\Important``, ``\\Junk``
``\\Spam``, ``\\Trash``; any other folder its own name; the ``\\All`` folder is no label).
Adding a label copies the message into that folder (made first when missing, as Gmail makes a
label); removing one expunges the copies there. Finding a message's labels reads every
folder's list once per command (the ids come from the store's cache).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailsrv.imap.commands import StoreLabels
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.gmail_ids import msgid_for, thrid_of
from mailsrv.imap.mailbox_names import encode_name
from mailsrv.imap.thread_ids import thread_seeds
from mailsrv.store.base import INBOX, FlagMode, FolderInfo, MessageGone, NoSuchFolder

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.session import ImapSession

#: A special-use folder's label (RFC 6154 attribute -> Gmail's system label).
SYSTEM_LABELS: dict[str, str] = {
    "\\Sent": "\\Sent",
    "\\Drafts": "\\Draft",
    "\\Flagged": "\\Starred",
    "\\Important": "\\Important",
    "\\Junk": "\\Spam",
    "\\Trash": "\\Trash",
}
INBOX_LABEL = "\\Inbox"
#: A label Gmail writes as an atom (RFC 3501 ATOM-CHAR); others go as quoted strings.
_ATOM = re.compile(rb"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")


@dataclass(frozen=True, slots=True)
class LabelIndex:
    """Every folder of one user, and which folders hold each X-GM-MSGID."""

    folders: tuple[FolderInfo, ...]
    holders: dict[int, list[str]]  # msgid -> folder names, in folder order

    def label_of(self, folder: str) -> str | None:
        """The label ``folder`` stands for (None: the ``\\All`` folder is none)."""
        if folder.upper() == INBOX:
            return INBOX_LABEL
        for f in self.folders:
            if f.name == folder:
                if f.special_use == "\\All":
                    return None
                return SYSTEM_LABELS.get(f.special_use or "", folder)
        return folder

    def folder_of(self, label: str) -> str:
        """The folder that holds the messages with ``label`` (it may not exist yet)."""
        upper = label.upper()
        if upper == INBOX_LABEL.upper():
            return INBOX
        for attr, system in SYSTEM_LABELS.items():
            if system.upper() == upper:
                for f in self.folders:
                    if f.special_use == attr:
                        return f.name
                raise CommandFailed("NO", f"No folder for the label {system}", "NONEXISTENT")
        if label.startswith("\\"):
            raise CommandFailed("BAD", f"Unknown system label {label}")
        return label

    def labels(self, msgid: int) -> list[str]:
        out: list[str] = []
        for folder in self.holders.get(msgid, ()):
            label = self.label_of(folder)
            if label is not None and label not in out:
                out.append(label)
        return out


async def label_index(s: ImapSession) -> LabelIndex:
    """Every folder's messages by X-GM-MSGID (``\\Noselect`` parents have none)."""
    store = s.ctx.store
    folders = tuple(await store.list_folders(s.username))
    holders: dict[int, list[str]] = {}
    for f in folders:
        try:
            box = await store.open(s.username, f.name)
            messages = (await box.snapshot()).messages
        except NoSuchFolder:
            continue
        for m in messages:
            names = holders.setdefault(await msgid_for(box, m.uid), [])
            if f.name not in names:
                names.append(f.name)
    return LabelIndex(folders, holders)


def render_labels(labels: Iterable[str], *, utf8: bool) -> bytes:
    """``X-GM-LABELS (\\Inbox "Muy Importante")``: system labels as atoms, others as strings."""
    parts = []
    for label in labels:
        wire = encode_name(label, utf8=utf8)
        bare = wire[1:-1]
        if label.startswith("\\") or (wire.startswith(b'"') and _ATOM.fullmatch(bare)):
            parts.append(label.encode() if label.startswith("\\") else bare)
        else:
            parts.append(wire)
    return b"X-GM-LABELS (" + b" ".join(parts) + b")"


async def store_labels(s: ImapSession, cmd: StoreLabels) -> None:
    """STORE [+-]X-GM-LABELS[.SILENT] (labels): copy into / expunge from the labels' folders."""
    view = s.require_view()
    if view.readonly:
        raise CommandFailed("NO", "Mailbox is read-only", "READ-ONLY")
    uids = view.live_uids(s.targets(cmd.sequence, uid=cmd.uid))
    index = await label_index(s)
    wanted = [index.folder_of(_label_text(s, raw)) for raw in cmd.labels]
    existing = {f.name for f in index.folders}
    msgids: dict[int, int] = {}
    for uid in uids:
        msgid = msgids[uid] = await msgid_for(view.mailbox, uid)
        held = [f for f in index.holders.get(msgid, []) if index.label_of(f) is not None]
        add, drop = _changes(cmd.mode, wanted, held)
        for folder in add:
            if folder not in existing:
                await s.ctx.store.create_folder(s.username, folder)
                existing.add(folder)
            await view.mailbox.copy([uid], folder, actor=s.id)
        for folder in drop:
            await _expunge_copies(s, folder, msgid)
    if not cmd.silent:
        await _report(s, view, msgids, cmd.uid)
    await s.ok(cmd.tag, "Store completed.", expunge=cmd.uid, uid=cmd.uid)


def _label_text(s: ImapSession, raw: bytes) -> str:
    if raw.startswith(b"\\"):
        return raw.decode("ascii", "replace")
    return s.mailbox_name(raw)


def _changes(mode: FlagMode, wanted: Sequence[str], held: Sequence[str]) -> tuple[list[str], ...]:
    """The folders to copy into and to expunge from (RFC 3501 §6.4.6 modes, on labels)."""
    if mode is FlagMode.ADD:
        return [f for f in dict.fromkeys(wanted) if f not in held], []
    if mode is FlagMode.REMOVE:
        return [], [f for f in dict.fromkeys(wanted) if f in held]
    return [f for f in dict.fromkeys(wanted) if f not in held], [f for f in held if f not in wanted]


async def _expunge_copies(s: ImapSession, folder: str, msgid: int) -> None:
    box = await s.ctx.store.open(s.username, folder)
    gone = []
    for m in (await box.snapshot()).messages:
        if await msgid_for(box, m.uid) == msgid:
            gone.append(m.uid)
    await box.expunge(gone, actor=s.id)


async def _report(s: ImapSession, view: MailboxView, msgids: dict[int, int], uid: bool) -> None:
    """``* n FETCH (X-GM-LABELS (...) UID u)`` for each message (its sequence number as the
    client still knows it: an EXPUNGE of a removed ``\\Inbox`` label follows with the OK)."""
    index = await label_index(s)
    for u, msgid in msgids.items():
        seq = view.seq_of(u)
        if not seq:
            continue
        labels = render_labels(index.labels(msgid), utf8=s.utf8)
        tail = b" UID %d" % u if uid else b""
        s.out.write(b"* %d FETCH (%s%s)\r\n" % (seq, labels, tail))


async def fetch_values(
    s: ImapSession, view: MailboxView, uids: Iterable[int], names: set[str]
) -> dict[tuple[int, str], bytes]:
    """The X-GM-* FETCH items of these messages, ready to go in their FETCH responses."""
    index = await label_index(s) if "X-GM-LABELS" in names else None
    live = view.live_uids(list(uids))
    seeds = await thread_seeds(s, view, live) if "X-GM-THRID" in names else {}
    out: dict[tuple[int, str], bytes] = {}
    for uid in live:
        try:
            msgid = await msgid_for(view.mailbox, uid)
        except MessageGone:
            continue
        out[uid, "X-GM-MSGID"] = b"X-GM-MSGID %d" % msgid
        seed = seeds.get(uid)
        if seed is not None:
            out[uid, "X-GM-THRID"] = b"X-GM-THRID %d" % thrid_of(seed, msgid)
        if index is not None:
            out[uid, "X-GM-LABELS"] = render_labels(index.labels(msgid), utf8=s.utf8)
    return out
