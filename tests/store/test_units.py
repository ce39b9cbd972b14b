"""Unit tests of the Maildir store's pieces: mUTF-7, file names, uidlist, keywords, layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsrv.store import mutf7
from mailsrv.store.base import DRAFT, FLAGGED, SEEN
from mailsrv.store.filenames import base_of, letters_of, name_time, new_base, size_fields
from mailsrv.store.keywords import Keywords, TooManyKeywords
from mailsrv.store.layout import (
    dir_folder,
    folder_dir,
    read_subscriptions,
    special_use_of,
    write_subscriptions,
)
from mailsrv.store.uidlist import (
    DotLock,
    Record,
    UidList,
    format_uidlist,
    parse_uidlist,
)


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("INBOX", "INBOX"),
        ("&", "&-"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("😀", "&2D3eAA-"),
    ],
)
def test_mutf7_known_values(text: str, encoded: str) -> None:
    assert mutf7.encode(text) == encoded
    assert mutf7.decode(encoded) == text


@given(st.text())
def test_mutf7_round_trip(text: str) -> None:
    encoded = mutf7.encode(text)
    assert encoded.isascii()
    assert mutf7.decode(encoded) == text


@pytest.mark.parametrize("bad", ["&", "&Jjo", "&AGE-", "&Jj=-", "a\x01", "&2D3-"])
def test_mutf7_rejects_bad_input(bad: str) -> None:
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode(bad)


def test_file_names() -> None:
    base = new_base(120, 125, 1_700_000_000.25)
    assert base.startswith("1700000000.M250000P")
    assert size_fields(base) == (120, 125)
    assert name_time(base) == pytest.approx(1_700_000_000.25)
    assert (base_of(base + ":2,FSa"), letters_of(base + ":2,FSa")) == (base, "FSa")
    assert (base_of(base), letters_of(base)) == (base, "")
    assert (base_of("1000.a.host:1,xyz"), letters_of("1000.a.host:1,xyz")) == ("1000.a.host", "")
    assert size_fields("1.x.host,S=12,W=14:2,S".partition(":")[0]) == (12, 14)
    assert size_fields("1.x.host,W=14,S=12") == (12, 14)
    assert name_time("1700000000.12345_1.host") == 1_700_000_000
    assert name_time("garbage") is None
    assert size_fields("1.x.host,S=12") == (12, None)


def test_uidlist_round_trip() -> None:
    ul = UidList(uidvalidity=1700000000, next_uid=4, guid="ab" * 16)
    ul.records["1.a.h,S=1,W=1"] = Record(1)
    ul.records["2.b.h"] = Record(3, "W2048")
    text = format_uidlist(ul)
    assert text.splitlines() == [
        f"3 V1700000000 N4 G{'ab' * 16}",
        "1 :1.a.h,S=1,W=1",
        "3 W2048 :2.b.h",
    ]
    back = parse_uidlist(text)
    assert not back.damaged
    assert (back.uidvalidity, back.next_free(), back.guid) == (1700000000, 4, "ab" * 16)
    assert back.records == ul.records


def test_uidlist_appended_records_raise_next_uid() -> None:
    # Dovecot (and we) append records without touching the header's N.
    ul = parse_uidlist("3 V5 N1 G00\n1 :a\n2 W3 :b\n")
    assert ul.next_free() == 3
    assert not ul.damaged


def test_uidlist_damage_detected() -> None:
    assert parse_uidlist("").damaged
    assert parse_uidlist("garbage\n1 :a\n").damaged
    ul = parse_uidlist("3 V5 N3 G00\n2 :a\n1 :b\nzz\n")
    assert ul.damaged
    assert ul.max_uid == 2
    partial = parse_uidlist("3 V5 N3 G00\n1 :a\n2 :b")  # unfinished last line
    assert not partial.damaged
    assert list(partial.records) == ["a"]


def test_uidlist_strips_info_from_names() -> None:
    ul = parse_uidlist("3 V5 N3 G00\n1 :a.b.c:2,S\n")
    assert list(ul.records) == ["a.b.c"]


def test_keywords_file(tmp_path: Path) -> None:
    kw = Keywords(tmp_path)
    kw.load()
    assert kw.missing([SEEN, "$Forwarded", "Junk"]) == ["$Forwarded", "Junk"]
    kw.add(["$Forwarded", "Junk"])
    assert (tmp_path / "dovecot-keywords").read_text() == "0 $Forwarded\n1 Junk\n"
    assert kw.letters([SEEN, FLAGGED, "Junk"]) == "FSb"
    assert kw.flags("DSab") == {DRAFT, SEEN, "$Forwarded", "Junk"}
    assert kw.letters([SEEN], keep="PSz") == "PSz"  # unknown letters survive
    again = Keywords(tmp_path)
    again.load()
    assert again.flags("a") == {"$Forwarded"}
    kw.add([f"k{i}" for i in range(24)])
    with pytest.raises(TooManyKeywords):
        kw.add(["one-too-many"])


def test_folder_dirs(tmp_path: Path) -> None:
    assert folder_dir(tmp_path, "INBOX") == tmp_path
    assert folder_dir(tmp_path, "A/Bü") == tmp_path / ".A.B&APw-"
    assert dir_folder(".A.B&APw-") == "A/Bü"
    assert dir_folder("cur") is None
    assert dir_folder(".") is None
    assert dir_folder("..") is None
    assert dir_folder(".bad&") is None
    assert dir_folder(".DOVECOT-TRASHED") is None


def test_subscriptions_both_formats(tmp_path: Path) -> None:
    (tmp_path / "subscriptions").write_text("INBOX\nSent\nWork.Projects\n")
    assert read_subscriptions(tmp_path) == {"INBOX", "Sent", "Work/Projects"}
    write_subscriptions(tmp_path, {"INBOX", "Bücher/Sub"})
    assert (tmp_path / "subscriptions").read_text() == "V\t2\n\nB&APw-cher\tSub\nINBOX\n"
    assert read_subscriptions(tmp_path) == {"INBOX", "Bücher/Sub"}


def test_special_use_defaults() -> None:
    assert special_use_of("Sent", {}) == "\\Sent"
    assert special_use_of("Sent", {"Sent Items": "\\Sent"}) is None
    assert special_use_of("Sent Items", {"Sent Items": "\\Sent"}) == "\\Sent"
    assert special_use_of("Work", {}) is None


def test_dot_lock_stale_takeover(tmp_path: Path) -> None:
    import os

    lock = tmp_path / "dovecot-uidlist.lock"
    lock.write_text("999999999:otherhost")
    os.utime(lock, (1, 1))
    with DotLock(tmp_path):
        assert lock.read_text().startswith(f"{os.getpid()}:")
    assert not lock.exists()


def test_dot_lock_busy(tmp_path: Path) -> None:
    from mailsrv.store.base import StoreBusy

    lock = tmp_path / "dovecot-uidlist.lock"
    lock.write_text("1:elsewhere")  # fresh, another host: must not be taken over
    with pytest.raises(StoreBusy):
        DotLock(tmp_path).acquire(wait=0.05)
    assert lock.read_text() == "1:elsewhere"


def test_next_uidvalidity_from_many_threads_at_once(tmp_path: Path) -> None:
    """Folders of one user are rebuilt in parallel threads: each gets a value, none fails on
    the other's temporary file, and no value is handed out twice."""
    import concurrent.futures

    from mailsrv.store.uidlist import next_uidvalidity

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        values = list(pool.map(lambda _: next_uidvalidity(tmp_path), range(64)))
    assert len(set(values)) == 64
    assert not list(tmp_path.glob("*.tmp"))
