"""Dovecot 2.3 interop, both ways: the same Maildir read by mailsrv and by Dovecot.

mailsrv writes (messages, flags, keywords, a folder) and Dovecot sees the same UIDs,
UIDVALIDITY, flags, keywords and sizes; Dovecot writes and mailsrv sees the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailsrv.store.base import FLAGGED, SEEN, FlagMode
from mailsrv.store.maildir import MaildirStore
from tests import dovecot
from tests.dovecot import Dovecot, running_dovecot, world_dir

pytestmark = [
    pytest.mark.dovecot,
    pytest.mark.skipif(not dovecot.available(), reason="Dovecot (doveadm) is not installed"),
]

MSG = b"From: a@example.org\nSubject: interop %d\n\nline one\nline two\n"


@pytest.fixture
def area() -> Iterator[Path]:
    with world_dir() as path:
        yield path


def fetch(dv: Dovecot, mailbox: str, fields: str = "uid flags size.virtual") -> dict[int, dict]:  # type: ignore[type-arg]
    """``doveadm fetch`` as {uid: {field: value}}; ``\\Recent`` dropped from flags."""
    out = dv.doveadm("fetch", "-u", "alice", fields, "mailbox", mailbox, "all")
    records: dict[int, dict] = {}  # type: ignore[type-arg]
    current: dict[str, object] = {}
    for line in out.splitlines():
        key, sep, value = line.strip("\f").partition(": ")
        if not sep:
            continue
        if key == "uid":
            current = {}
            records[int(value)] = current
        elif key == "flags":
            current[key] = frozenset(value.split()) - {"\\Recent"}
        else:
            current[key] = value
    return records


def status(dv: Dovecot, mailbox: str) -> dict[str, int]:
    out = dv.doveadm(
        "mailbox", "status", "-u", "alice", "uidvalidity uidnext messages", mailbox
    ).strip()
    fields = dict(part.split("=") for part in out.split()[1:] if "=" in part)
    return {k: int(v) for k, v in fields.items()}


async def test_dovecot_reads_what_mailsrv_wrote(area: Path) -> None:
    root = area / "mail"
    store = MaildirStore(root)
    await store.ensure_user("alice")
    await store.deliver("alice", MSG % 1)
    await store.deliver("alice", MSG % 2, flags=[SEEN, "$Forwarded"])
    u3 = await store.deliver("alice", MSG % 3)
    await store.deliver("alice", MSG % 4, internal_date=1_600_000_000)
    box = await store.open("alice")
    await box.store_flags([u3], [FLAGGED, "Junk"], FlagMode.ADD)
    await box.expunge([1])
    await store.create_folder("alice", "Work/Bücher")
    await box.copy([2, 3], "Work/Bücher")
    ours = await box.snapshot()
    work = await (await store.open("alice", "Work/Bücher")).snapshot()
    await store.close()

    with running_dovecot(area / "dovecot", root) as dv:
        seen = fetch(dv, "INBOX")
        assert sorted(seen) == [m.uid for m in ours.messages] == [2, 3, 4]
        for m in ours.messages:
            assert seen[m.uid]["flags"] == m.flags
            assert int(seen[m.uid]["size.virtual"]) == m.size
        assert seen[3]["flags"] == {FLAGGED, "Junk"}
        st = status(dv, "INBOX")
        assert st == {"uidvalidity": ours.uidvalidity, "uidnext": ours.uidnext, "messages": 3}
        assert status(dv, "Work/Bücher")["uidvalidity"] == work.uidvalidity
        copied = fetch(dv, "Work/Bücher", "uid flags")
        assert {u: r["flags"] for u, r in copied.items()} == {m.uid: m.flags for m in work.messages}
        date = dv.doveadm(
            "fetch", "-u", "alice", "date.received.unixtime", "mailbox", "INBOX", "uid", "4"
        )
        assert "1600000000" in date
        body = dv.doveadm("fetch", "-u", "alice", "text", "mailbox", "INBOX", "uid", "2")
        assert "Subject: interop 2" in body and "line two" in body
        listed = dv.doveadm("mailbox", "list", "-u", "alice").split()
        assert {"INBOX", "Sent", "Trash", "Work/Bücher"} <= set(listed)
        subscribed = dv.doveadm("mailbox", "list", "-s", "-u", "alice").split()
        assert {"INBOX", "Sent", "Work/Bücher"} <= set(subscribed)


async def test_mailsrv_reads_what_dovecot_wrote(area: Path) -> None:
    root = area / "mail"
    with running_dovecot(area / "dovecot", root) as dv:
        for n in range(1, 5):
            dv.doveadm("save", "-u", "alice", "-m", "INBOX", input=MSG % n)
        dv.doveadm(
            "flags", "add", "-u", "alice", "\\Seen $Forwarded", "mailbox", "INBOX", "uid", "1"
        )
        dv.doveadm("flags", "add", "-u", "alice", "\\Flagged Junk", "mailbox", "INBOX", "uid", "2")
        dv.doveadm("expunge", "-u", "alice", "mailbox", "INBOX", "uid", "3")
        dv.doveadm("mailbox", "create", "-u", "alice", "Work/Bücher")
        dv.doveadm("mailbox", "subscribe", "-u", "alice", "Work/Bücher")
        dv.doveadm("save", "-u", "alice", "-m", "Work/Bücher", input=MSG % 9)
        theirs = fetch(dv, "INBOX")
        st = status(dv, "INBOX")

        store = MaildirStore(root)
        box = await store.open("alice")
        snap = await box.snapshot()
        assert [m.uid for m in snap.messages] == sorted(theirs) == [1, 2, 4]
        assert (snap.uidvalidity, snap.uidnext) == (st["uidvalidity"], st["uidnext"])
        for m in snap.messages:
            assert m.flags == theirs[m.uid]["flags"]
            assert m.size == int(theirs[m.uid]["size.virtual"])
        assert snap.messages[1].flags == {FLAGGED, "Junk"}
        data = await box.read(4)
        assert data == (MSG % 4).replace(b"\n", b"\r\n")
        assert len(data) == snap.messages[2].size
        folders = {f.name: f for f in await store.list_folders("alice")}
        assert folders["Work/Bücher"].subscribed
        work = await (await store.open("alice", "Work/Bücher")).snapshot()
        assert [m.uid for m in work.messages] == [1]

        # And back again: our changes on Dovecot's files, seen by Dovecot.
        await box.store_flags([4], ["\\Answered", "$Forwarded"], FlagMode.ADD)
        new_uid = await store.deliver("alice", MSG % 5, flags=["Junk"])
        await asyncio.sleep(0)
        await store.close()
        dv.handover()
        again = fetch(dv, "INBOX", "uid flags")
        assert new_uid == 5
        assert again[4]["flags"] == {"\\Answered", "$Forwarded"}
        assert again[5]["flags"] == {"Junk"}
        assert status(dv, "INBOX")["uidnext"] == 6


async def test_dovecot_accepts_appended_uidlist(
    area: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a size we append records without rewriting the header, as Dovecot itself does."""
    from mailsrv.store import folder_ops

    monkeypatch.setattr(folder_ops, "APPEND_FROM", 0)
    root = area / "mail"
    store = MaildirStore(root)
    await store.ensure_user("alice")
    for n in range(3):
        await store.deliver("alice", MSG % n)
    await store.close()
    header = (root / "alice" / "dovecot-uidlist").read_text().splitlines()[0]
    assert " N1 " in header  # appended, header untouched
    with running_dovecot(area / "dovecot", root) as dv:
        assert sorted(fetch(dv, "INBOX", "uid")) == [1, 2, 3]
        assert status(dv, "INBOX")["uidnext"] == 4


async def test_copied_messages_keep_their_guid_both_ways(area: Path) -> None:
    """A COPY or MOVE by mailsrv gives the new record the G field Dovecot writes for its own
    copies: Dovecot sees the copy with the source's GUID, and mailsrv reads Dovecot's."""
    root = area / "mail"
    store = MaildirStore(root)
    await store.ensure_user("alice")
    await store.create_folder("alice", "Work")
    for n in (1, 2):
        await store.deliver("alice", MSG % n)
    box = await store.open("alice")
    source = [m.message_guid for m in (await box.snapshot()).messages]
    await box.copy([1], "Work")
    await box.copy([1], "INBOX")
    await box.move([2], "Work")
    await store.close()

    with running_dovecot(area / "dovecot", root) as dv:
        inbox = fetch(dv, "INBOX", "uid guid")
        assert {u: r["guid"] for u, r in inbox.items()} == {1: source[0], 3: source[0]}
        work = fetch(dv, "Work", "uid guid")
        assert {u: r["guid"] for u, r in work.items()} == {1: source[0], 2: source[1]}
        # Dovecot's own copy into the same folder (a new name, a G field): mailsrv reads it.
        dv.doveadm("copy", "-u", "alice", "INBOX", "mailbox", "Work", "uid", "2")
        theirs = fetch(dv, "INBOX", "uid guid")
        dv.handover()
        again = MaildirStore(root)
        snap = await (await again.open("alice")).snapshot()
        assert {m.uid: m.message_guid for m in snap.messages} == {
            u: r["guid"] for u, r in theirs.items()
        }
        assert snap.messages[-1].message_guid == source[1]
        await again.close()
