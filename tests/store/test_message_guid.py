"""A message's GUID (RFC 8474 EMAILID) kept by COPY and MOVE through the uidlist's ``G`` field,
and kept by every path that rewrites the uidlist: appends, the prune of stale records, the
rebuild of a damaged list, a new UIDVALIDITY, a restart and another process's view."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsrv.store import folder_ops
from mailsrv.store.base import Store
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.uidlist import Record, format_record, guid_field, guid_of, parse_uidlist
from tests.store.conftest import message


def test_guid_field_round_trip() -> None:
    line = format_record("1700000001.M5P2Q2.host,S=5,W=6", Record(3, guid_field("1.M1P1.h,S=5")))
    assert line == "3 G1.M1P1.h,S=5 :1700000001.M5P2Q2.host,S=5,W=6\n"
    ul = parse_uidlist("3 V1 N4 Gabc\n" + line)
    rec = ul.records["1700000001.M5P2Q2.host,S=5,W=6"]
    assert not ul.damaged and guid_of(rec.fields) == "1.M1P1.h,S=5"
    assert guid_of("W2048 S2000") == guid_of("") == ""
    assert guid_of("W20 Gdeadbeef") == "deadbeef"
    assert guid_field("with blank") == guid_field("a:b") == guid_field("") == ""


async def _guids(store: Store, folder: str) -> list[str]:
    snap = await (await store.open("alice", folder)).snapshot()
    return [m.message_guid for m in snap.messages]


async def test_copy_and_move_keep_the_guid(store: Store) -> None:
    await store.create_folder("alice", "Work")
    await store.create_folder("alice", "Old")
    for n in range(3):
        await store.deliver("alice", message(n))
    inbox = await store.open("alice")
    first = await _guids(store, "INBOX")
    assert len(set(first)) == 3
    assert await inbox.copy([1, 2], "Work") == [(1, 1), (2, 2)]
    assert await inbox.copy([1], "INBOX") == [(1, 4)]  # into its own folder
    assert await inbox.move([3], "Work") == [(3, 3)]
    assert await _guids(store, "Work") == first
    assert await _guids(store, "INBOX") == [first[0], first[1], first[0]]
    work = await store.open("alice", "Work")
    await work.move([1], "Old")  # a copy of a copy: still the first message's GUID
    assert await _guids(store, "Old") == [first[0]]
    snap = await work.snapshot()
    keys = {m.key for m in snap.messages}
    assert not keys & set(first)  # new files, new base names: only the GUID is kept


async def _copied(tmp_path: Path) -> tuple[MaildirStore, list[str]]:
    store = MaildirStore(tmp_path)
    await store.ensure_user("alice")
    await store.create_folder("alice", "Work")
    for n in range(3):
        await store.deliver("alice", message(n))
    await (await store.open("alice")).copy([1, 2, 3], "Work")
    return store, await _guids(store, "INBOX")


def _work_uidlist(tmp_path: Path) -> Path:
    return tmp_path / "alice" / ".Work" / "dovecot-uidlist"


async def test_guid_written_as_dovecot_writes_it(tmp_path: Path) -> None:
    store, first = await _copied(tmp_path)
    lines = _work_uidlist(tmp_path).read_text().splitlines()[1:]
    assert [line.split()[1] for line in lines] == ["G" + g for g in first]
    await store.close()


async def test_guid_survives_restart_and_another_process(tmp_path: Path) -> None:
    store, first = await _copied(tmp_path)
    other = MaildirStore(tmp_path)  # a second process on the same root
    assert await _guids(other, "Work") == first
    await other.close()
    await store.close()
    again = MaildirStore(tmp_path)
    assert await _guids(again, "Work") == first
    await again.close()


async def test_guid_survives_new_uidvalidity(tmp_path: Path) -> None:
    store, first = await _copied(tmp_path)
    work = await store.open("alice", "Work")
    old = (await work.snapshot()).uidvalidity
    assert await work.uidvalidity_bump() != old
    assert await _guids(store, "Work") == first
    assert guid_of(parse_uidlist(_work_uidlist(tmp_path).read_text()).records.popitem()[1].fields)
    await store.close()


async def test_guid_survives_rebuild_of_damaged_list(tmp_path: Path) -> None:
    store, first = await _copied(tmp_path)
    await store.close()
    path = _work_uidlist(tmp_path)
    path.write_text("garbage header\n" + "\n".join(path.read_text().splitlines()[1:]) + "\n")
    fresh = MaildirStore(tmp_path)
    assert await _guids(fresh, "Work") == first
    assert not parse_uidlist(path.read_text()).damaged
    await fresh.close()


async def test_guid_survives_prune_of_stale_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, first = await _copied(tmp_path)
    work = await store.open("alice", "Work")
    await store.deliver("alice", message(9), folder="Work")
    await work.expunge([4])
    monkeypatch.setattr(folder_ops, "STALE_RECORDS", 0)  # the next commit rewrites the list
    await store.deliver("alice", message(10), folder="Work")
    ul = parse_uidlist(_work_uidlist(tmp_path).read_text())
    assert [r.uid for r in ul.records.values()] == [1, 2, 3, 5]  # rewritten without UID 4
    assert (await _guids(store, "Work"))[:3] == first
    await store.close()
    again = MaildirStore(tmp_path)
    assert (await _guids(again, "Work"))[:3] == first
    await again.close()
