"""Where a scanned message goes (``Scanned.deliver`` over ``MemoryStore``): spam into the
user's ``\\Junk`` folder with ``$Junk``, a virus into Quarantine or refused, clean mail where
it was sent; and a scanner with no engine changes nothing."""

from __future__ import annotations

import pytest

from mailsrv.scan.delivery import QUARANTINE, Scanned, VirusRefused
from mailsrv.scan.scanner import Scanner
from mailsrv.scan.settings import ScanSettings
from mailsrv.scan.verdict import ScanResult, SpamCheck, VirusCheck
from mailsrv.store.memory import MemoryStore

DATA = b"Subject: x\r\n\r\nbody\r\n"
SPAM = ScanResult(SpamCheck("yes", 1000.0, 5.0), VirusCheck("clean"))
CLEAN = ScanResult(SpamCheck("no", 0.1, 5.0), VirusCheck("clean"))
VIRUS = ScanResult(None, VirusCheck("infected", "Eicar-Test-Signature"))


async def folder_flags(store: MemoryStore, folder: str) -> list[frozenset[str]]:
    mbox = await store.open("alice", folder)
    return [m.flags for m in (await mbox.snapshot()).messages]


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.ensure_user("alice")
    return s


async def test_spam_goes_to_junk_with_the_keyword(store: MemoryStore) -> None:
    placed = await Scanned(DATA, SPAM).deliver(store, "alice", flags=["\\Seen"])
    assert placed.folder == "Junk"
    assert await folder_flags(store, "Junk") == [frozenset({"$Junk", "\\Seen"})]
    assert await folder_flags(store, "INBOX") == []


async def test_spam_sent_to_another_folder_stays_there_marked(store: MemoryStore) -> None:
    await store.create_folder("alice", "Lists")
    placed = await Scanned(DATA, SPAM).deliver(store, "alice", "Lists")
    assert placed.folder == "Lists"
    assert await folder_flags(store, "Lists") == [frozenset({"$Junk"})]


async def test_the_junk_folder_is_found_by_its_special_use(store: MemoryStore) -> None:
    await store.delete_folder("alice", "Junk")
    await store.create_folder("alice", "Spam", "\\Junk")
    assert (await Scanned(DATA, SPAM).deliver(store, "alice")).folder == "Spam"
    await store.delete_folder("alice", "Spam")
    assert (await Scanned(DATA, SPAM).deliver(store, "alice")).folder == "Junk"  # made again
    infos = {f.name: f.special_use for f in await store.list_folders("alice")}
    assert infos["Junk"] == "\\Junk"


async def test_virus_quarantined_or_refused(store: MemoryStore) -> None:
    placed = await Scanned(DATA, VIRUS).deliver(store, "alice")
    assert placed.folder == QUARANTINE
    with pytest.raises(VirusRefused, match="Eicar-Test-Signature"):
        await Scanned(DATA, VIRUS, refusal="Eicar-Test-Signature").deliver(store, "alice")
    assert len(await folder_flags(store, QUARANTINE)) == 1
    assert Scanned(DATA, VIRUS, "Eicar").smtp_refusal == (
        "554 5.7.1 Message refused: virus found (Eicar)"
    )


async def test_clean_and_unscanned_mail_goes_where_it_was_sent(store: MemoryStore) -> None:
    assert (await Scanned(DATA, CLEAN).deliver(store, "alice")).folder == "INBOX"
    assert (await Scanned(DATA).deliver(store, "alice")).folder == "INBOX"
    assert await folder_flags(store, "INBOX") == [frozenset(), frozenset()]


async def test_no_engine_no_change() -> None:
    forged = b"X-Spam-Status: Yes, score=99.0 required=5.0 tests=X\r\n" + DATA
    scanned = await Scanner(ScanSettings()).scan(forged)
    assert scanned == Scanned(forged)  # scanning off: the message as it came
