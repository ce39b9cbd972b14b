"""The fast paths of POP3 output, tracing, certificates, reset and the fd limit say the same
thing as the slow ones: pieces join to the old wire form, summaries match, nothing is lost."""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsrv.cli.serve import raise_fd_limit
from mailsrv.pop3.responses import MultiLine, Ok, dot_stuff, dot_unstuff, encode, encode_chunks
from mailsrv.redact import redact_line, redact_response
from mailsrv.store.maildir import MaildirStore
from mailsrv.tls import VERIFIED_FILE, cert_paths, ensure_certificates

LIMIT = 400


def test_unstuffed_body_is_written_without_a_copy() -> None:
    body = b"Subject: x\r\n\r\n" + b"line\r\n" * 1000
    chunks = encode_chunks(MultiLine("6014 octets", body))
    assert chunks[0] == b"+OK 6014 octets\r\n"
    assert chunks[1] is body  # the very object the store gave
    assert chunks[2:] == [b".\r\n"]


def test_stuffing_still_happens_where_needed() -> None:
    chunks = encode_chunks(MultiLine("x", b".lead\r\nmid\r\n.dot\r\nend"))
    assert b"".join(chunks) == b"+OK x\r\n..lead\r\nmid\r\n..dot\r\nend\r\n.\r\n"
    assert encode(Ok("fine")) == b"+OK fine\r\n"
    assert encode(MultiLine("empty")) == b"+OK empty\r\n.\r\n"


@given(st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"\r\n")))
def test_pieces_join_to_the_stuffed_block(body: bytes) -> None:
    joined = b"".join(encode_chunks(MultiLine("t", body)))
    assert joined == b"+OK t\r\n" + dot_stuff(body) + b".\r\n"
    block = joined[len(b"+OK t\r\n") : -3]
    expected = body if not body or body.endswith(b"\r\n") else body + b"\r\n"
    assert dot_unstuff(block) == expected


@given(st.lists(st.binary(max_size=500), min_size=1, max_size=4))
def test_response_summary_matches_the_joined_form(parts: list[bytes]) -> None:
    parts[0] = b"+OK status\r\n" + parts[0]
    assert redact_response(parts, LIMIT) == redact_line("pop3", "S", b"".join(parts), False, LIMIT)


def test_big_response_is_summarized() -> None:
    body = b"x" * 100_000 + b"\r\n"
    text = redact_response([b"+OK 100002 octets\r\n", body, b".\r\n"], LIMIT)
    assert text == "+OK 100002 octets ... {100022 bytes}"


def test_checked_certificates_are_trusted_without_cryptography(tmp_path: Path) -> None:
    paths = ensure_certificates(tmp_path)
    assert (tmp_path / VERIFIED_FILE).exists()
    probe = (
        "import sys; from pathlib import Path; from mailsrv.tls import ensure_certificates;"
        f"ensure_certificates(Path({str(tmp_path)!r}));"
        "print('cryptography' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60)
    assert done.stdout.strip() == b"False", done.stderr
    # A replaced file is checked again in full (and a broken one made again).
    cert_paths(tmp_path).cert_file.write_text("garbage")
    ensure_certificates(tmp_path)
    assert paths.cert_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_new_host_name_is_not_taken_from_the_record(tmp_path: Path) -> None:
    ensure_certificates(tmp_path)
    before = cert_paths(tmp_path).cert_file.read_bytes()
    ensure_certificates(tmp_path, ["mail.example.test"])
    assert cert_paths(tmp_path).cert_file.read_bytes() != before


def test_fd_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard > 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        before, now, limit = raise_fd_limit()
        assert limit == hard
        assert now == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if hard != resource.RLIM_INFINITY:
            assert now == hard
            assert before <= now
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_reset_is_immediate_and_close_finishes_the_deletion(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "mail", create_users=True)
    for user in ("ann", "bob"):
        await store.ensure_user(user)
        await store.deliver(user, b"Subject: hi\r\n\r\nbody\r\n")
    await store.reset()
    assert await store.list_users() == []
    await store.ensure_user("ann")  # a new, empty mailbox right away
    assert (await (await store.open("ann")).snapshot()).messages == ()
    await store.close()
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == ["ann"]


@pytest.mark.parametrize("rounds", [3])
async def test_resets_in_a_row_leave_no_graves(tmp_path: Path, rounds: int) -> None:
    store = MaildirStore(tmp_path / "mail", create_users=True)
    for _ in range(rounds):
        await store.ensure_user("ann")
        await store.deliver("ann", b"Subject: hi\r\n\r\nbody\r\n")
        await store.reset()
    await store.close()
    await asyncio.sleep(0)
    assert list((tmp_path / "mail").iterdir()) == []
