"""The MIME structure of a big message parsed through a memory map of its file equals the one
parsed from its bytes: the same tree, so the same BODYSTRUCTURE, BODY and ENVELOPE, byte for
byte; and Dovecot 2.3 gives the same BODYSTRUCTURE for the big ones."""

from __future__ import annotations

import base64
import functools
import random
from pathlib import Path

import pytest

from mailsrv.imap.bodystructure import body_structure
from mailsrv.imap.envelope import envelope
from mailsrv.message.structure import MimePart, parse_message
from mailsrv.store.mailbox import MAP_STRUCTURE, MaildirMailbox
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.mapped_parse import parse_file
from tests import dovecot
from tests.dovecot import running_dovecot, world_dir
from tests.unit.mime_corpus import NAMES, wire

HEAD = (
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\n"
    b"Subject: big %s\r\nMIME-Version: 1.0\r\n"
)


def _base64(size: int, seed: int) -> bytes:
    data = random.Random(seed).randbytes(size)
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _multipart(boundary: bytes, parts: list[bytes], *, close: bool = True) -> bytes:
    out = b"This is a multi-part message in MIME format.\r\n"
    for part in parts:
        out += b"--" + boundary + b"\r\n" + part + b"\r\n"
    return out + (b"--" + boundary + b"--\r\n" if close else b"")


def _attachment(size: int, seed: int, body: bytes | None = None) -> bytes:
    return (
        b'Content-Type: application/pdf; name="a.pdf"\r\n'
        b'Content-Disposition: attachment; filename="a.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + (body or _base64(size, seed))
    )


TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nthere\r\n"


@functools.cache
def tricky() -> dict[str, bytes]:
    """Big messages built to catch a parser that reads a map differently from bytes."""
    big = _attachment(1_500_000, 1)
    html = b"Content-Type: text/html\r\n\r\n<p>hi</p>\r\n"
    inner = (
        HEAD % b"inner"
        + b'Content-Type: multipart/mixed; boundary="in"\r\n\r\n'
        + _multipart(b"in", [TEXT, _attachment(300_000, 2)])
    )
    # Lines that look like delimiters but are not: a shorter prefix, dashes galore.
    decoys = b"".join(b"--ou\r\n-----\r\n--o\r\n" for _ in range(50))
    noisy = _attachment(0, 0, body=_base64(200_000, 3) + decoys + _base64(200_000, 4))
    eight_bit = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + b"caf\xe9 cr\xe8me br\xfbl\xe9e\r\n" * 40_000
    )
    mixed = b'Content-Type: multipart/mixed; boundary="ou"\r\n\r\n'
    return {
        "attachment": HEAD % b"1" + mixed + _multipart(b"ou", [TEXT, big]),
        "nested": HEAD % b"2"
        + mixed
        + _multipart(
            b"ou",
            [
                b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
                + _multipart(b"alt", [TEXT, html]),
                b"Content-Type: message/rfc822\r\n\r\n" + inner,
                big,
            ],
        ),
        "missing_final_boundary": HEAD % b"3" + mixed + _multipart(b"ou", [TEXT, big], close=False),
        "boundary_decoys_in_base64": HEAD % b"4" + mixed + _multipart(b"ou", [noisy, TEXT]),
        "eight_bit_text": HEAD % b"5\xc3\xa9" + eight_bit,
        "big_text_in_multipart": HEAD % b"6" + mixed + _multipart(b"ou", [eight_bit, big]),
        "message_rfc822_big": HEAD % b"7"
        + b"Content-Type: message/rfc822\r\n\r\n"
        + HEAD % b"in"
        + b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
        + _multipart(b"x", [TEXT, big]),
        "no_blank_line": HEAD % b"8" + b"X-Long: " + b"y" * 100_000,
    }


CASES = {**{f"corpus-{n}": wire(n) for n in NAMES}, **tricky()}


def _answers(root: MimePart) -> tuple[bytes, bytes, bytes]:
    return (
        body_structure(root, extended=True),
        body_structure(root, extended=False),
        envelope(root),
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_mapped_parse_equals_the_parse_of_the_bytes(name: str, tmp_path: Path) -> None:
    data = CASES[name]
    path = tmp_path / "msg"
    path.write_bytes(data)
    mapped = parse_file(str(path))
    assert mapped == parse_message(data)
    assert _answers(mapped) == _answers(parse_message(data))


def test_an_empty_file_parses_like_no_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert parse_file(str(path)) == parse_message(b"")


def test_the_tricky_messages_are_big_enough_to_be_mapped() -> None:
    assert all(len(data) >= MAP_STRUCTURE for data in tricky().values())


async def test_the_store_maps_big_wire_files_only(tmp_path: Path) -> None:
    big = tricky()["nested"]
    store = MaildirStore(tmp_path / "mail")
    await store.ensure_user("alice")
    big_uid = await store.deliver("alice", big)
    small_uid = await store.deliver("alice", wire("alt_in_mixed"))
    # Written by another program, with bare LFs and no W= (delivery writes CRLF and W=).
    bare_lf = big.replace(b"\r\n", b"\n")
    (tmp_path / f"mail/alice/new/1700000000.M1P1.other,S={len(bare_lf)}").write_bytes(bare_lf)
    box = await store.open("alice")
    assert isinstance(box, MaildirMailbox)
    bare_lf_uid = max(m.uid for m in (await box.snapshot()).messages)
    assert bare_lf_uid > small_uid
    root = await box.mapped_structure(big_uid)
    assert root is not None and root == parse_message(await box.read(big_uid))
    assert await box.mapped_structure(small_uid) is None  # one read is cheaper
    assert await box.mapped_structure(bare_lf_uid) is None  # not in wire form on disk
    assert parse_message(await box.read(bare_lf_uid)) == root  # read (and made CRLF) instead
    await store.close()


@pytest.mark.dovecot
@pytest.mark.skipif(not dovecot.available(), reason="Dovecot (doveadm) is not installed")
async def test_dovecot_gives_the_same_bodystructure_for_the_big_ones() -> None:
    with world_dir() as area:
        root = area / "mail"
        store = MaildirStore(root)
        await store.ensure_user("alice")
        cases = tricky()
        uids = {name: await store.deliver("alice", data) for name, data in cases.items()}
        box = await store.open("alice")
        assert isinstance(box, MaildirMailbox)
        ours = {}
        for name, uid in uids.items():
            mapped = await box.mapped_structure(uid)
            assert mapped is not None
            ours[name] = body_structure(mapped, extended=True)
        await store.close()
        with running_dovecot(area / "dovecot", root) as dv:
            for name, uid in uids.items():
                out = dv.doveadm(
                    "fetch",
                    "-u",
                    "alice",
                    "imap.bodystructure",
                    "mailbox",
                    "INBOX",
                    "uid",
                    str(uid),
                )
                theirs = out.strip("\f\n").partition(": ")[2].encode("latin-1")
                assert b"NIL" in theirs, out  # a real answer came back
                assert _normalized(theirs) == _normalized(ours[name]), name


def _normalized(bodystructure: bytes) -> bytes:
    """doveadm prints the BODYSTRUCTURE without its outer parentheses."""
    value = bodystructure.strip()
    return value[1:-1] if value.startswith(b"(") and value.endswith(b")") else value
