"""FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY).

Speed matters here: a client syncing a folder asks for the metadata of every message at once.
Responses are built as byte joins and written in batches; ENVELOPE and BODYSTRUCTURE come from
the store's per-message cache (a message is parsed at most once, ever); the message file is read
only for items that need its bytes, once per message, and the MIME tree only built when a
section needs it. Non-PEEK body fetches set ``\\Seen`` first, in one store call, and report the
new FLAGS in the same response (RFC 9051 §6.4.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailsrv.imap import condstore, object_ids
from mailsrv.imap.bodystructure import body_structure
from mailsrv.imap.commands import Fetch, FetchItem
from mailsrv.imap.envelope import envelope
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.gmail_labels import fetch_values
from mailsrv.imap.gmail_names import GMAIL_ITEMS
from mailsrv.imap.responses import flag_list, internal_date
from mailsrv.imap.sections import binary_section, binary_size, section_bytes
from mailsrv.imap.strings import string
from mailsrv.imap.thread_ids import thread_seeds
from mailsrv.message.preview import preview_text
from mailsrv.message.structure import MimePart, parse_message
from mailsrv.message.transfer_encoding import UnknownTransferEncoding
from mailsrv.message.wire import header_end
from mailsrv.store.base import (
    SEEN,
    BatchCache,
    EventKind,
    FlagMode,
    Mailbox,
    MessageGone,
    StoreEvent,
)

if TYPE_CHECKING:
    from mailsrv.imap.mailbox_view import MailboxView
    from mailsrv.imap.session import ImapSession

#: Bytes of responses gathered before handing them to the transport (and waiting for it).
WRITE_BATCH = 256 * 1024
_SETS_SEEN = frozenset({"BODY", "BINARY", "RFC822", "RFC822.TEXT"})
_CACHE_KEYS = {
    "ENVELOPE": "imap.envelope",
    "BODYSTRUCTURE": "imap.bodystructure",
    "BODY": "imap.body",
    "PREVIEW": "imap.preview",  # RFC 8970, the rendered string
}
_HEADER_TEXTS = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"})
_UID = FetchItem("UID")
_CACHE_PREFIX = {name: name.encode() + b" " for name in _CACHE_KEYS}
#: Items a response can be built from without reading the message (once its cache is filled).
_OBJECT_IDS = frozenset({"EMAILID", "THREADID"})
#: Items whose values are worked out for all the messages first (``_precomputed``).
_PRECOMPUTED = GMAIL_ITEMS | {"THREADID"}
_METADATA = frozenset(
    {"UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "MODSEQ", *_OBJECT_IDS, *_CACHE_KEYS}
)
_MODSEQ = FetchItem("MODSEQ")
#: Messages per batch: one cache query and one cache write each.
BATCH = 500
#: Entries kept in the FLAGS / INTERNALDATE memos before they start over.
_MEMO_MAX = 50_000


def _sets_seen(item: FetchItem) -> bool:
    return item.name in _SETS_SEEN and (item.name != "BODY" or item.section is not None)


def _reads_body(item: FetchItem) -> bool:
    if item.name in ("BODY", "BODYSTRUCTURE", "RFC822", "RFC822.TEXT", "PREVIEW"):
        return True
    spec = item.section
    return spec is not None and (spec.part != () or spec.text not in _HEADER_TEXTS)


def section_name(item: FetchItem) -> bytes:
    """``BODY[1.HEADER.FIELDS (FROM)]<0>`` as it is named in the response."""
    spec = item.section
    if spec is None:
        raise ValueError("not a section item")
    base = item.name.removesuffix(".PEEK")
    inner = ".".join(str(p) for p in spec.part)
    if spec.text:
        inner = f"{inner}.{spec.text}" if inner else spec.text
    if spec.fields:
        inner += " (" + " ".join(spec.fields) + ")"
    origin = f"<{item.partial[0]}>" if item.partial else ""
    return f"{base}[{inner}]{origin}".encode()


def _literal(data: bytes, out: list[bytes], *, binary: bool = False) -> None:
    prefix = b"~{%d}\r\n" if binary and b"\0" in data else b"{%d}\r\n"
    out.append(prefix % len(data))
    out.append(data)


class LoadedMessage:
    """What one message's items have loaded so far (each thing at most once)."""

    __slots__ = ("_root", "_wire", "fresh", "header", "known", "mailbox", "needs_body", "uid")

    def __init__(
        self,
        mailbox: Mailbox,
        uid: int,
        needs_body: bool,
        known: dict[tuple[int, str], bytes] | None = None,
        fresh: list[tuple[int, str, bytes]] | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.uid = uid
        self.needs_body = needs_body  # some item reads the body: read the file once, whole
        self.known = known  # cache values loaded for the batch (absent: ask the mailbox)
        self.fresh = fresh  # cache values computed here, written for the whole batch
        self._wire: bytes | None = None
        self._root: MimePart | None = None
        self.header: bytes | None = None

    async def wire(self) -> bytes:
        if self._wire is None:
            self._wire = await self.mailbox.read(self.uid)
        return self._wire

    async def root(self) -> MimePart:
        if self._root is None:
            self._root = parse_message(await self.wire())
        return self._root

    async def head(self) -> bytes:
        if self._wire is not None:
            return self._wire[: header_end(self._wire)]
        if self.header is None:
            self.header = await self.mailbox.read_header(self.uid)
        return self.header

    async def cached(self, name: str) -> bytes:
        key = _CACHE_KEYS[name]
        if self.known is not None:
            value = self.known.get((self.uid, key))
        else:
            value = await self.mailbox.get_cached(self.uid, key)
        if value is None:
            if name == "ENVELOPE":
                # The envelope needs only the top-level header: no need to read the body.
                root = await self.root() if self.needs_body else parse_message(await self.head())
                value = envelope(root)
            elif name == "PREVIEW":
                value = string(preview_text(await self.root(), await self.wire()).encode())
            else:
                root = await self.root()
                value = body_structure(root, extended=name == "BODYSTRUCTURE")
            if self.fresh is not None:
                self.fresh.append((self.uid, key, value))
            else:
                await self.mailbox.set_cached(self.uid, key, value)
        return value


async def _section(msg: LoadedMessage, item: FetchItem, out: list[bytes]) -> None:
    spec = item.section
    if spec is None:
        raise ValueError("not a section item")
    if item.name.startswith("BINARY"):
        root, wire = await msg.root(), await msg.wire()
        try:
            if item.name == "BINARY.SIZE":
                out.append(b"%s %d" % (section_name(item), binary_size(root, wire, spec.part)))
                return
            data: bytes | None = binary_section(root, wire, spec.part)
        except UnknownTransferEncoding:
            raise CommandFailed("NO", "Unknown Content-Transfer-Encoding", "UNKNOWN-CTE") from None
    elif spec.part == () and spec.text == "":
        data = await msg.wire()
    elif spec.part == () and spec.text in _HEADER_TEXTS:
        head = await msg.head()
        data = head if spec.text == "HEADER" else section_bytes(parse_message(head), head, spec)
    else:
        data = section_bytes(await msg.root(), await msg.wire(), spec)
    out.append(section_name(item) + b" ")
    if data is None:
        out.append(b"NIL")
        return
    if item.partial is not None:
        start, count = item.partial
        data = data[start : start + count]
    _literal(data, out, binary=item.name.startswith("BINARY"))


async def _item(
    view: MailboxView,
    msg: LoadedMessage,
    item: FetchItem,
    out: list[bytes],
    extra: dict[tuple[int, str], bytes] | None = None,
) -> None:
    name, uid = item.name, msg.uid
    if extra is not None and name in _PRECOMPUTED:
        value = extra.get((uid, name))
        if value is None:
            raise MessageGone(uid)
        out.append(value)
    elif name == "UID":
        out.append(b"UID %d" % uid)
    elif name == "FLAGS":
        out.append(_flags(view.tables.flags, view.info[uid].flags, uid in view.recent))
    elif name == "RFC822.SIZE":
        out.append(b"RFC822.SIZE %d" % view.info[uid].size)
    elif name == "INTERNALDATE":
        out.append(_date(view.tables.dates, view.info[uid].internal_date))
    elif name == "MODSEQ":
        out.append(b"MODSEQ (%d)" % view.info[uid].modseq)
    elif name == "EMAILID":
        out.append(object_ids.fetch_email_id(view.info[uid].message_guid))
    elif name == "SAVEDATE":  # RFC 8514 §3
        out.append(b"SAVEDATE " + internal_date(await msg.mailbox.save_date(uid)))
    elif item.section is not None:
        await _section(msg, item, out)
    elif name in _CACHE_KEYS:
        out.append(_CACHE_PREFIX[name] + await msg.cached(name))
    elif name == "RFC822":
        out.append(b"RFC822 ")
        _literal(await msg.wire(), out)
    elif name == "RFC822.HEADER":
        out.append(b"RFC822.HEADER ")
        _literal(await msg.head(), out)
    else:  # RFC822.TEXT
        wire = await msg.wire()
        out.append(b"RFC822.TEXT ")
        _literal(wire[header_end(wire) :], out)


async def fetch(s: ImapSession, cmd: Fetch) -> None:
    view = s.require_view()
    uids = s.targets(cmd.sequence, uid=cmd.uid)
    items = list(cmd.items)
    if (cmd.uid or s.qresync) and _UID not in items:
        items.insert(0, _UID)
    if cmd.vanished and not s.qresync:
        raise CommandFailed("BAD", "VANISHED needs ENABLE QRESYNC first")
    if cmd.changedsince is not None or _MODSEQ in items:
        s.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    if cmd.changedsince is not None:
        if _MODSEQ not in items:
            items.append(_MODSEQ)
        if cmd.vanished:
            await condstore.fetch_vanished(s, view, cmd.sequence, cmd.changedsince)
        uids = condstore.changed_since(view, view.live_uids(uids), cmd.changedsince)
    marked = await _mark_seen(s, view, uids, items)
    if marked and s.condstore and _MODSEQ not in items:
        items.append(_MODSEQ)  # RFC 7162 §3.1.4: a flag change goes out with its MODSEQ
    extra = await _precomputed(s, view, uids, items)
    missing = await _respond(s, view, uids, items, marked, extra)
    if any(_sets_seen(i) for i in items) and uids:
        s.ctx.store.publish(
            StoreEvent(s.username, view.name, EventKind.FETCHED, tuple(uids), actor=s.id)
        )
    if missing:
        await s.send_updates(expunge=cmd.uid, uid=cmd.uid)
        raise CommandFailed("NO", "Some of the requested messages no longer exist", "EXPUNGEISSUED")
    await s.ok(cmd.tag, "Fetch completed.", expunge=cmd.uid, uid=cmd.uid)


async def _mark_seen(
    s: ImapSession, view: MailboxView, uids: list[int], items: list[FetchItem]
) -> set[int]:
    if view.readonly or not any(_sets_seen(i) for i in items):
        return set()
    unseen = [u for u in view.live_uids(uids) if SEEN not in view.info[u].flags]
    if not unseen:
        return set()
    infos = await view.mailbox.store_flags(unseen, (SEEN,), FlagMode.ADD, actor=s.id)
    view.note_flags(infos)
    return {m.uid for m in infos}


def _flags(
    memo: dict[tuple[frozenset[str], bool], bytes], flags: frozenset[str], recent: bool
) -> bytes:
    """``FLAGS (...)``, built once per distinct flag set."""
    key = (flags, recent)
    done = memo.get(key)
    if done is None:
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        done = memo[key] = b"FLAGS " + flag_list(flags, recent)
    return done


def _date(memo: dict[float, bytes], seconds: float) -> bytes:
    """``INTERNALDATE "..."``, built once per distinct date."""
    done = memo.get(seconds)
    if done is None:
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        done = memo[seconds] = b"INTERNALDATE " + internal_date(seconds)
    return done


def _metadata(
    view: MailboxView,
    uid: int,
    names: list[str],
    known: dict[tuple[int, str], bytes],
    extra: dict[tuple[int, str], bytes] | None,
) -> list[bytes] | None:
    """The items of a metadata-only FETCH for one message, without awaiting anything; None
    when a cached value is missing (the caller takes the general path)."""
    info = view.info[uid]
    parts: list[bytes] = []
    for name in names:
        if name == "UID":
            parts.append(b"UID %d" % uid)
        elif name == "FLAGS":
            parts.append(_flags(view.tables.flags, info.flags, uid in view.recent))
        elif name == "RFC822.SIZE":
            parts.append(b"RFC822.SIZE %d" % info.size)
        elif name == "INTERNALDATE":
            parts.append(_date(view.tables.dates, info.internal_date))
        elif name == "MODSEQ":
            parts.append(b"MODSEQ (%d)" % info.modseq)
        elif name == "EMAILID":
            parts.append(object_ids.fetch_email_id(info.message_guid))
        elif name == "THREADID":
            thread = None if extra is None else extra.get((uid, name))
            if thread is None:
                return None
            parts.append(thread)
        else:
            value = known.get((uid, _CACHE_KEYS[name]))
            if value is None:
                return None
            parts.append(_CACHE_PREFIX[name] + value)
    return parts


async def _respond(
    s: ImapSession,
    view: MailboxView,
    uids: list[int],
    items: list[FetchItem],
    marked: set[int],
    extra: dict[tuple[int, str], bytes] | None = None,
) -> bool:
    """Write one FETCH response per message; True when some message had gone.

    Messages go in batches: the batch's cached ENVELOPE/BODYSTRUCTURE values come from one
    cache query, the values computed for it are stored with one statement, and a metadata-only
    response is built without awaiting anything and written with its batch in one piece.
    """
    flags_item = FetchItem("FLAGS")
    add_flags = bool(marked) and flags_item not in items
    mailbox, out, missing, pending = view.mailbox, s.out, False, 0
    needs_body = any(_reads_body(i) for i in items)
    keys = {_CACHE_KEYS[i.name] for i in items if i.section is None and i.name in _CACHE_KEYS}
    batch = mailbox if keys and isinstance(mailbox, BatchCache) else None
    names = [i.name for i in items]
    meta = batch is not None and all(
        i.section is None and i.partial is None and i.name in _METADATA for i in items
    )
    info = view.info
    for first in range(0, len(uids), BATCH):
        chunk = uids[first : first + BATCH]
        known: dict[tuple[int, str], bytes] | None = None
        fresh: list[tuple[int, str, bytes]] | None = None
        if batch is not None:
            known = await batch.get_cached_many(chunk, keys)
            fresh = []
        for uid in chunk:
            head = b"* %d FETCH (" % view.seq_of(uid)
            if meta and known is not None and uid in info and not (add_flags and uid in marked):
                quick = _metadata(view, uid, names, known, extra)
                if quick is not None:
                    line = head + b" ".join(quick) + b")\r\n"
                    out.write(line)
                    pending += len(line)
                    continue
            parts: list[bytes] = [head]
            msg = LoadedMessage(mailbox, uid, needs_body, known, fresh)
            try:
                for i, item in enumerate(items):
                    if i:
                        parts.append(b" ")
                    await _item(view, msg, item, parts, extra)
                if add_flags and uid in marked:
                    parts.append(b" ")
                    await _item(view, msg, flags_item, parts)
            except MessageGone:
                missing = True
                continue
            parts.append(b")\r\n")
            for piece in parts:
                out.write(piece)
                pending += len(piece)
            if pending >= WRITE_BATCH:
                pending = 0
                await out.drain()
        if batch is not None and fresh:
            await batch.set_cached_many(fresh)
        if pending >= WRITE_BATCH:
            pending = 0
            await out.drain()
    return missing


async def notify_fetch(
    s: ImapSession, view: MailboxView, uids: list[int], items: Sequence[FetchItem]
) -> None:
    """FETCH responses for new messages that NOTIFY's MessageNew asked for (RFC 5465 §5.2).
    A notification never changes a message: body items do not set ``\\Seen``."""
    await _respond(s, view, uids, list(items), set(), await _precomputed(s, view, uids, items))


async def _precomputed(
    s: ImapSession, view: MailboxView, uids: list[int], items: Sequence[FetchItem]
) -> dict[tuple[int, str], bytes] | None:
    """The values worked out for all ``uids`` at once: Gmail's and THREADID, keyed by (uid,
    item name); a message left out is gone. None when no item asks for them."""
    names = {i.name for i in items}
    gmail = names & GMAIL_ITEMS
    extra = await fetch_values(s, view, uids, gmail) if gmail else None
    if "THREADID" in names:
        extra = {} if extra is None else extra
        rendered: dict[str, bytes] = {}  # a thread's messages share one seed
        for uid, seed in (await thread_seeds(s, view, view.live_uids(uids))).items():
            value = rendered.get(seed)
            if value is None:
                value = rendered[seed] = object_ids.fetch_thread_id(seed)
            extra[(uid, "THREADID")] = value
    return extra


__all__ = ["fetch", "notify_fetch", "section_name"]
