"""FETCH in batches on a Maildir store: the same bytes as the one-message-at-a-time path of
the memory store, cold and warm, across batch edges, and with a message gone mid-FETCH."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailsrv.imap import fetch as fetch_mod
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context

META = b"(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)"


def _message(i: int) -> bytes:
    head = f"From: Ann <ann{i}@example.com>\r\nTo: bob@example.com\r\nSubject: note {i}\r\n"
    if i % 3 == 0:
        return (
            head.encode() + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"AAEC\r\n--b--\r\n"
        )
    return head.encode() + b"\r\n" + b"line\r\n" * (i + 1)


async def _filled(store: MaildirStore | MemoryStore, count: int) -> Talker:
    await store.ensure_user("ann")
    for i in range(count):
        await store.deliver("ann", _message(i), internal_date=1_700_000_000.0 + i * 3600)
    imap = Talker(make_context(store))  # type: ignore[arg-type]  # any Store will do
    await imap.login()
    await imap.select()
    return imap


def _sans_dates(data: bytes) -> bytes:
    return re.sub(rb"INTERNALDATE \"[^\"]*\"", b"INTERNALDATE x", data)


@pytest.mark.parametrize("batch", [1, 7, 500])
async def test_batched_fetch_matches_the_single_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(fetch_mod, "BATCH", batch)
    maildir = MaildirStore(tmp_path / "mail", create_users=True)
    disk, memory = await _filled(maildir, 20), await _filled(MemoryStore(), 20)
    want = await memory.talk(b"F UID FETCH 1:* " + META + b"\r\n")
    assert want.count(b" FETCH (") == 20 and want.endswith(b"F OK Fetch completed.\r\n")
    cold = await disk.talk(b"F UID FETCH 1:* " + META + b"\r\n")
    warm = await disk.talk(b"F UID FETCH 1:* " + META + b"\r\n")
    assert cold == warm
    assert _sans_dates(cold) == _sans_dates(want)
    # Cached values and a body section in one command take the general path, same bytes.
    mixed = b"G FETCH 2:5 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)] FLAGS)\r\n"
    assert await disk.talk(mixed) == await memory.talk(mixed)
    await maildir.close()


async def test_a_message_gone_mid_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_mod, "BATCH", 4)
    store = MaildirStore(tmp_path / "mail", create_users=True)
    imap = await _filled(store, 10)
    await imap.talk(b"W UID FETCH 1:* " + META + b"\r\n")  # warm: every value cached
    other = Talker(imap.ctx)
    await other.login()
    await other.select()
    assert b"X OK" in await other.talk(b"X STORE 6 +FLAGS.SILENT (\\Deleted)\r\nY EXPUNGE\r\n")
    reply = await imap.talk(b"F FETCH 1:* (UID ENVELOPE)\r\n")
    assert reply.count(b" FETCH (") == 9
    assert b"* 6 FETCH" not in reply
    assert b"F NO [EXPUNGEISSUED]" in reply
    await store.close()
