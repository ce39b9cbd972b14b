"""The Store/Mailbox contract, run on MemoryStore and MaildirStore alike."""

from __future__ import annotations

import pytest

from mailsrv.store.base import (
    ANSWERED,
    DEFAULT_SPECIAL_FOLDERS,
    DELETED,
    FLAGGED,
    INBOX,
    SEEN,
    EventKind,
    FlagMode,
    FolderExists,
    InvalidName,
    MessageGone,
    NoSuchFolder,
    NoSuchUser,
    Store,
)
from tests.store.conftest import message


async def test_deliver_snapshot_read(store: Store) -> None:
    uid1 = await store.deliver("alice", message(1))
    uid2 = await store.deliver("alice", b"Subject: two\r\n\r\nbody\r\n")
    assert (uid1, uid2) == (1, 2)
    box = await store.open("alice")
    snap = await box.snapshot()
    assert snap.name == INBOX
    assert [m.uid for m in snap.messages] == [1, 2]
    assert snap.uidnext == 3
    assert snap.uidvalidity > 0
    data = await box.read(1)
    assert data == message(1).replace(b"\n", b"\r\n")
    assert snap.messages[0].size == len(data)
    assert snap.messages[0].flags == frozenset()
    assert await box.read_header(2) == b"Subject: two\r\n\r\n"
    assert len({m.key for m in snap.messages}) == 2


async def test_snapshot_version_changes_only_with_content(store: Store) -> None:
    box = await store.open("alice")
    a = await box.snapshot()
    b = await box.snapshot()
    assert a.version == b.version
    await store.deliver("alice", message())
    c = await box.snapshot()
    assert c.version != b.version
    assert len(c.messages) == 1


async def test_internal_date_kept(store: Store) -> None:
    uid = await store.deliver("alice", message(), internal_date=1_600_000_000.0)
    box = await store.open("alice")
    (info,) = (await box.snapshot()).messages
    assert info.uid == uid
    assert abs(info.internal_date - 1_600_000_000.0) < 1


async def test_flags_and_keywords_round_trip(store: Store) -> None:
    uid = await store.deliver("alice", message(), flags=[SEEN, "$Forwarded"])
    box = await store.open("alice")
    (info,) = (await box.snapshot()).messages
    assert info.flags == {SEEN, "$Forwarded"}
    out = await box.store_flags([uid], [FLAGGED, "Junk"], FlagMode.ADD)
    assert out[0].flags == {SEEN, FLAGGED, "$Forwarded", "Junk"}
    out = await box.store_flags([uid], [SEEN, "$Forwarded"], FlagMode.REMOVE)
    assert out[0].flags == {FLAGGED, "Junk"}
    out = await box.store_flags([uid], [ANSWERED], FlagMode.REPLACE)
    assert out[0].flags == {ANSWERED}
    assert (await box.snapshot()).messages[0].flags == {ANSWERED}


async def test_store_flags_skips_gone_messages(store: Store) -> None:
    uid = await store.deliver("alice", message())
    box = await store.open("alice")
    out = await box.store_flags([uid, 99], [SEEN], FlagMode.ADD)
    assert [m.uid for m in out] == [uid]


async def test_expunge(store: Store) -> None:
    for n in range(3):
        await store.deliver("alice", message(n))
    box = await store.open("alice")
    assert await box.expunge([2, 7]) == [2]
    snap = await box.snapshot()
    assert [m.uid for m in snap.messages] == [1, 3]
    with pytest.raises(MessageGone):
        await box.read(2)
    assert await store.deliver("alice", message()) == 4  # UIDs never reused


async def test_copy_keeps_flags(store: Store) -> None:
    uid = await store.deliver("alice", message(), flags=[SEEN, "Work"])
    box = await store.open("alice")
    assert await box.copy([uid], "Archive") == [(uid, 1)]
    arch = await store.open("alice", "Archive")
    (info,) = (await arch.snapshot()).messages
    assert info.flags == {SEEN, "Work"}
    assert await arch.read(1) == await box.read(uid)
    assert len((await box.snapshot()).messages) == 1
    with pytest.raises(NoSuchFolder):
        await box.copy([uid], "Nowhere")


async def test_move(store: Store) -> None:
    u1 = await store.deliver("alice", message(1), flags=[FLAGGED])
    u2 = await store.deliver("alice", message(2))
    box = await store.open("alice")
    sub = store.subscribe("alice")
    assert await box.move([u1, u2], "Trash") == [(u1, 1), (u2, 2)]
    assert (await box.snapshot()).messages == ()
    trash = await store.open("alice", "Trash")
    snap = await trash.snapshot()
    assert [m.flags for m in snap.messages] == [{FLAGGED}, frozenset()]
    kinds = [(e.kind, e.folder) for e in _drain(sub)]
    assert (EventKind.COPIED, "Trash") in kinds
    assert (EventKind.MOVED, INBOX) in kinds


async def test_cache(store: Store) -> None:
    uid = await store.deliver("alice", message())
    box = await store.open("alice")
    assert await box.get_cached(uid, "bodystructure") is None
    await box.set_cached(uid, "bodystructure", b"(TEXT PLAIN)")
    assert await box.get_cached(uid, "bodystructure") == b"(TEXT PLAIN)"
    other = await store.open("alice")
    assert await other.get_cached(uid, "bodystructure") == b"(TEXT PLAIN)"
    with pytest.raises(MessageGone):
        await box.get_cached(42, "x")


async def test_uidvalidity_bump(store: Store) -> None:
    await store.deliver("alice", message(1))
    await store.deliver("alice", message(2))
    box = await store.open("alice")
    await box.expunge([1])
    before = await box.snapshot()
    new = await box.uidvalidity_bump()
    after = await box.snapshot()
    assert new == after.uidvalidity != before.uidvalidity
    assert len(after.messages) == 1


async def test_users(store: Store) -> None:
    assert await store.user_exists("alice")
    assert not await store.user_exists("bob")
    with pytest.raises(NoSuchUser):
        await store.deliver("bob", message())
    await store.ensure_user("bob")
    assert await store.list_users() == ["alice", "bob"]
    await store.delete_user("bob")
    assert await store.list_users() == ["alice"]
    with pytest.raises(InvalidName):
        await store.ensure_user("../evil")


async def test_special_folders(store: Store) -> None:
    folders = {f.name: f for f in await store.list_folders("alice")}
    assert next(iter(folders)) == INBOX
    for use, name in DEFAULT_SPECIAL_FOLDERS.items():
        assert folders[name].special_use == use
        assert folders[name].subscribed


async def test_create_list_delete_folders(store: Store) -> None:
    await store.create_folder("alice", "Work")
    await store.create_folder("alice", "Work/Projects", special_use="\\Flagged")
    with pytest.raises(FolderExists):
        await store.create_folder("alice", "Work")
    folders = {f.name: f for f in await store.list_folders("alice")}
    assert folders["Work"].has_children
    assert not folders["Work/Projects"].has_children
    assert folders["Work/Projects"].special_use == "\\Flagged"
    await store.set_subscribed("alice", "Work", False)
    assert not {f.name: f for f in await store.list_folders("alice")}["Work"].subscribed
    await store.delete_folder("alice", "Work")
    names = [f.name for f in await store.list_folders("alice")]
    assert "Work" not in names
    assert "Work/Projects" in names  # children survive (RFC 3501 §6.3.4)
    with pytest.raises(NoSuchFolder):
        await store.delete_folder("alice", "Work")
    with pytest.raises(InvalidName):
        await store.delete_folder("alice", "inbox")


@pytest.mark.parametrize(
    "bad", ["..", "a/../b", "a\0b", ".", "a.b", "/abs", "x" * 300, "a//b", "~x", "a\\b"]
)
async def test_unsafe_folder_names_refused(store: Store, bad: str) -> None:
    with pytest.raises(InvalidName):
        await store.create_folder("alice", bad)
    with pytest.raises(NoSuchFolder):
        await store.open("alice", bad)


async def test_non_ascii_folder_name(store: Store) -> None:
    await store.create_folder("alice", "Entwürfe/台北 & Co")
    names = [f.name for f in await store.list_folders("alice")]
    assert "Entwürfe/台北 & Co" in names
    uid = await store.deliver("alice", message(), folder="Entwürfe/台北 & Co")
    box = await store.open("alice", "Entwürfe/台北 & Co")
    assert [m.uid for m in (await box.snapshot()).messages] == [uid]


async def test_rename_folder_with_children(store: Store) -> None:
    await store.create_folder("alice", "A")
    await store.create_folder("alice", "A/B")
    uid = await store.deliver("alice", message(), folder="A/B", flags=[SEEN])
    sub = store.subscribe("alice")
    await store.rename_folder("alice", "A", "Z")
    names = [f.name for f in await store.list_folders("alice")]
    assert "Z" in names and "Z/B" in names and "A" not in names and "A/B" not in names
    box = await store.open("alice", "Z/B")
    (info,) = (await box.snapshot()).messages
    assert (info.uid, info.flags) == (uid, {SEEN})
    events = _drain(sub)
    assert any(e.kind is EventKind.FOLDER_RENAMED and e.detail == "Z" for e in events)
    with pytest.raises(FolderExists):
        await store.rename_folder("alice", "Z", "Trash")
    with pytest.raises(NoSuchFolder):
        await store.rename_folder("alice", "Nope", "Other")


async def test_rename_inbox_moves_messages(store: Store) -> None:
    await store.deliver("alice", message(1), flags=[SEEN])
    await store.deliver("alice", message(2))
    await store.rename_folder("alice", "INBOX", "Old")
    inbox = await store.open("alice")
    assert (await inbox.snapshot()).messages == ()
    old = await store.open("alice", "Old")
    msgs = (await old.snapshot()).messages
    assert [m.flags for m in msgs] == [{SEEN}, frozenset()]
    assert await old.read(msgs[1].uid) == message(2).replace(b"\n", b"\r\n")


async def test_events_published(store: Store) -> None:
    sub = store.subscribe("alice")
    everyone = store.subscribe()
    uid = await store.deliver("alice", message(), actor="smtp-1")
    box = await store.open("alice")
    await box.store_flags([uid], [DELETED], FlagMode.ADD, actor="imap-1")
    await box.expunge([uid], actor="imap-1")
    await store.create_folder("alice", "New")
    await store.delete_folder("alice", "New")
    events = _drain(sub)
    assert [(e.kind, e.uids) for e in events] == [
        (EventKind.DELIVERED, (uid,)),
        (EventKind.FLAGS, (uid,)),
        (EventKind.EXPUNGED, (uid,)),
        (EventKind.FOLDER_CREATED, ()),
        (EventKind.FOLDER_DELETED, ()),
    ]
    assert events[0].actor == "smtp-1"
    assert len(_drain(everyone)) == 5
    sub.close()
    everyone.close()


async def test_reset(store: Store) -> None:
    await store.deliver("alice", message())
    sub = store.subscribe()
    await store.reset()
    assert await store.list_users() == []
    assert [e.kind for e in _drain(sub)] == [EventKind.RESET]
    await store.ensure_user("alice")
    box = await store.open("alice")
    assert (await box.snapshot()).messages == ()


def _drain(sub):  # type: ignore[no-untyped-def]
    out = []
    while (e := sub.get_nowait()) is not None:
        out.append(e)
    return out
