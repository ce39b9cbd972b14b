"""URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524): the grammar whole and byte by byte, the
authorized-URL parser and its INTERNAL tokens, the access key file, and the session over the
in-memory store (GENURLAUTH, URLFETCH as another user, RESETKEY, EXPIRE, CATENATE)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailsrv.imap.commands import GenUrlauth, InvalidCommand, ResetKey, UrlFetch, UrlFetchItem
from mailsrv.imap.imap_url import BadUrl
from mailsrv.imap.parser import parse_command
from mailsrv.imap.urlauth import Access, authorized_form, parse_auth_url, sign, token_matches
from mailsrv.store import access_keys
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context
from tests.unit.test_imap_framing import feed_all_ways

RUMP = b"imap://ann@example.org/INBOX/;uid=1/;section=1;urlauth=user+bob"
MULTIPART = (
    b"From: ann@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"aGVsbG8gd29ybGQ=\r\n--b--\r\n"
)


# -- grammar -----------------------------------------------------------------------------------


def test_genurlauth_whole_and_byte_by_byte() -> None:
    data = b'g GENURLAUTH "' + RUMP + b'" INTERNAL ' + RUMP + b" internal\r\n"
    expected = GenUrlauth("g", ((RUMP, "INTERNAL"), (RUMP, "INTERNAL")))
    for result in feed_all_ways(data):
        assert result[0] == expected


def test_urlfetch_plain_and_with_parameters_byte_by_byte() -> None:
    data = b"u URLFETCH " + RUMP + b" (" + RUMP + b" BINARY bodypartstructure) (" + RUMP + b")\r\n"
    expected = UrlFetch(
        "u",
        (
            UrlFetchItem(RUMP),
            UrlFetchItem(RUMP, True, "BINARY", True),
            UrlFetchItem(RUMP, True),
        ),
    )
    for result in feed_all_ways(data):
        assert result[0] == expected


def test_resetkey_forms() -> None:
    assert parse_command(b"r RESETKEY\r\n") == ResetKey("r", None)
    assert parse_command(b"r RESETKEY INBOX\r\n") == ResetKey("r", b"INBOX")
    assert parse_command(b'r RESETKEY "Sent" INTERNAL\r\n') == ResetKey("r", b"Sent", ("INTERNAL",))


@pytest.mark.parametrize(
    "line",
    [
        b"g GENURLAUTH\r\n",
        b"g GENURLAUTH " + RUMP + b"\r\n",
        b"u URLFETCH\r\n",
        b"u URLFETCH (" + RUMP + b" BINARY BODY)\r\n",
        b"u URLFETCH (" + RUMP + b" BINARY BINARY)\r\n",
        b"u URLFETCH (" + RUMP + b" SIZE)\r\n",
        b"u URLFETCH (" + RUMP + b"\r\n",
        b"r RESETKEY INBOX (x)\r\n",
    ],
)
def test_bad_grammar_is_invalid_with_the_tag(line: bytes) -> None:
    cmd = parse_command(line)
    assert isinstance(cmd, InvalidCommand)
    assert cmd.tag == line.split(b" ")[0].decode()


# -- authorized URLs ---------------------------------------------------------------------------


def test_rump_parses_into_owner_target_access() -> None:
    url = parse_auth_url(RUMP)
    assert url.owner == "ann"
    assert url.target.mailbox == b"INBOX" and url.target.uid == 1
    assert url.target.section is not None and url.target.section.part == (1,)
    assert url.access == Access("user", "bob")
    assert url.rump == RUMP and url.token is None and url.expire is None


def test_token_is_hmac_sha1_of_the_rump() -> None:
    key = bytes(range(16))
    full = authorized_form(RUMP, key)
    expected = hmac.new(key, RUMP, hashlib.sha1).hexdigest().encode()
    assert full == RUMP + b":internal:" + expected
    url = parse_auth_url(full)
    assert url.mechanism == "INTERNAL" and url.rump == RUMP
    assert token_matches(url, key)
    assert not token_matches(url, bytes(16))
    tampered = parse_auth_url(full.replace(b"uid=1", b"uid=2"))
    assert not token_matches(tampered, key)
    assert sign(RUMP, key) == expected


def test_expire_and_access_identifiers() -> None:
    url = parse_auth_url(
        b"imap://ann@h/INBOX/;uid=3;expire=2030-01-02T03:04:05Z;urlauth=submit+ann%40x"
    )
    assert url.expire == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert url.access == Access("submit", "ann@x")
    assert not url.access.allows("ann@x")  # only a submission agent, and mailsrv has none
    assert Access("authuser").allows("anyone") and Access("anonymous").allows("x")
    assert Access("user", "bob").allows("bob") and not Access("user", "bob").allows("ann")


@pytest.mark.parametrize(
    "url",
    [
        b"imap://ann@h/INBOX/;uid=1",  # no URLAUTH
        b"/INBOX/;uid=1;urlauth=anonymous",  # not absolute
        b"imap://h/INBOX/;uid=1;urlauth=anonymous",  # no user
        b"imap://ann@h/INBOX/;uid=1;urlauth=everyone",
        b"imap://ann@h/INBOX/;uid=1;urlauth=user+",
        b"imap://ann@h/INBOX/;uid=1;expire=2030-01-02T03:04:05;urlauth=authuser",  # no zone
        b"imap://ann@h/INBOX/;uid=1;urlauth=authuser:internal:xyz",
        b"imap://ann@h/INBOX/;uid=1;urlauth=authuser:internal",
    ],
)
def test_bad_authorized_urls(url: bytes) -> None:
    with pytest.raises(BadUrl):
        parse_auth_url(url)


# -- the key file ------------------------------------------------------------------------------


def test_key_file_is_private_random_and_rotates(tmp_path: Path) -> None:
    assert access_keys.key_for(tmp_path, "INBOX", create=False) is None
    key = access_keys.key_for(tmp_path, "INBOX", create=True)
    assert key is not None and len(key) == 16
    assert access_keys.key_for(tmp_path, "INBOX", create=True) == key  # stable
    other = access_keys.key_for(tmp_path, "Sent", create=True)
    assert other is not None and other != key
    path = tmp_path / access_keys.KEYS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key.hex() in path.read_text()
    access_keys.drop_keys(tmp_path, ["INBOX"])
    assert access_keys.key_for(tmp_path, "INBOX", create=False) is None
    assert access_keys.key_for(tmp_path, "Sent", create=False) == other
    new = access_keys.key_for(tmp_path, "INBOX", create=True)
    assert new is not None and new != key
    access_keys.drop_keys(tmp_path, None)
    assert access_keys.read_keys(tmp_path) == {}


def test_key_file_skips_damaged_lines(tmp_path: Path) -> None:
    (tmp_path / access_keys.KEYS_FILE).write_text("zz\tINBOX\n" + "ab" * 16 + "\tSent\nnoise\n")
    assert access_keys.read_keys(tmp_path) == {"Sent": bytes.fromhex("ab" * 16)}


# -- sessions ----------------------------------------------------------------------------------


async def _two_sessions() -> tuple[Talker, Talker, MemoryStore]:
    store = MemoryStore()
    await store.ensure_user("ann")
    await store.ensure_user("bob")
    await store.deliver("ann", MULTIPART)
    ctx = make_context(store)
    ann, bob = Talker(ctx), Talker(ctx)
    await ann.login("ann")
    await bob.login("bob")
    return ann, bob, store


def _signed(reply: bytes) -> bytes:
    m = re.search(rb"\* GENURLAUTH (\S+)\r\n", reply)
    assert m is not None, reply
    return m.group(1)


async def test_genurlauth_then_urlfetch_by_the_named_user_then_resetkey() -> None:
    ann, bob, _ = await _two_sessions()
    rump = b"imap://ann@h/INBOX/;uid=1;urlauth=user+bob"
    reply = await ann.talk(b'g GENURLAUTH "' + rump + b'" INTERNAL\r\n')
    assert b"g OK" in reply
    url = _signed(reply)
    fetched = await bob.talk(b"u URLFETCH " + url + b"\r\n")
    assert fetched == b"* URLFETCH " + url + b" {%d}\r\n" % len(MULTIPART) + MULTIPART + (
        b"\r\nu OK Urlfetch completed.\r\n"
    )
    # not for ann (user+bob), and not once the token is changed
    assert b"* URLFETCH " + url + b" NIL\r\n" in await ann.talk(b"u URLFETCH " + url + b"\r\n")
    bad = url[:-4] + (b"0000" if not url.endswith(b"0000") else b"1111")
    assert b" NIL\r\n" in await bob.talk(b"u URLFETCH " + bad + b"\r\n")
    assert b"r OK" in await ann.talk(b"r RESETKEY INBOX\r\n")
    assert b"* URLFETCH " + url + b" NIL\r\n" in await bob.talk(b"u URLFETCH " + url + b"\r\n")


async def test_urlfetch_binary_and_bodypartstructure_of_a_part() -> None:
    ann, bob, _ = await _two_sessions()
    reply = await ann.talk(
        b'g GENURLAUTH "imap://ann@h/INBOX/;uid=1/;section=1;urlauth=authuser" INTERNAL\r\n'
    )
    url = _signed(reply)
    got = await bob.talk(b"u URLFETCH (" + url + b" BODYPARTSTRUCTURE BINARY)\r\n")
    assert got.startswith(b"* URLFETCH " + url + b' (BODYPARTSTRUCTURE ("text" "plain" ')
    assert b'"base64" 11 0 ' in got  # the decoded data BINARY returns: 11 octets, no line
    assert b" BINARY {11}\r\nhello world)\r\nu OK" in got
    got = await bob.talk(b"u URLFETCH (" + url + b" BODY)\r\n")
    assert b"(BODY {16}\r\naGVsbG8gd29ybGQ=)" in got
    got = await bob.talk(b"u URLFETCH (" + url + b" BODYPARTSTRUCTURE)\r\n")
    assert b'"base64" 16 0 ' in got  # as stored


async def test_expired_url_fetches_nil() -> None:
    ann, bob, _ = await _two_sessions()
    past = b"imap://ann@h/INBOX/;uid=1;expire=2001-01-01T00:00:00Z;urlauth=authuser"
    url = _signed(await ann.talk(b'g GENURLAUTH "' + past + b'" INTERNAL\r\n'))
    assert b" NIL\r\n" in await bob.talk(b"u URLFETCH " + url + b"\r\n")
    future = past.replace(b"2001", b"2999")
    url = _signed(await ann.talk(b'g GENURLAUTH "' + future + b'" INTERNAL\r\n'))
    assert b"{%d}" % len(MULTIPART) in await bob.talk(b"u URLFETCH " + url + b"\r\n")


async def test_genurlauth_refusals_and_session_goes_on() -> None:
    ann, _, _ = await _two_sessions()
    cases = {
        b'"imap://bob@h/INBOX/;uid=1;urlauth=authuser" INTERNAL': b"a NO ",
        b'"imap://ann@h/Nope/;uid=1;urlauth=authuser" INTERNAL': b"a NO [NONEXISTENT]",
        b'"imap://ann@h/INBOX/;uid=1;urlauth=authuser" XSECRET': b"a NO ",
        b'"imap://ann@h/INBOX/;uid=1" INTERNAL': b"a BAD ",
    }
    for args, answer in cases.items():
        reply = await ann.talk(b"a GENURLAUTH " + args + b"\r\n")
        assert reply.startswith(answer), reply
    assert b"n OK" in await ann.talk(b"n NOOP\r\n")
    assert (await ann.talk(b"r RESETKEY Nope\r\n")).startswith(b"r NO [NONEXISTENT]")
    assert (await ann.talk(b"r RESETKEY INBOX XSECRET\r\n")).startswith(b"r NO ")


async def test_plain_url_to_own_message_and_not_to_anothers() -> None:
    ann, bob, _ = await _two_sessions()
    got = await ann.talk(b"u URLFETCH imap://ann@h/INBOX/;uid=1/;section=1\r\n")
    assert b" {16}\r\naGVsbG8gd29ybGQ=\r\nu OK" in got
    got = await bob.talk(b"u URLFETCH imap://ann@h/INBOX/;uid=1\r\n")
    assert got.startswith(b"* URLFETCH imap://ann@h/INBOX/;uid=1 NIL\r\n")


async def test_catenate_takes_another_users_urlauth_url() -> None:
    ann, bob, store = await _two_sessions()
    url = _signed(
        await ann.talk(
            b'g GENURLAUTH "imap://ann@h/INBOX/;uid=1/;section=1;urlauth=user+bob" INTERNAL\r\n'
        )
    )
    head = b"Subject: fwd\r\n\r\n"
    reply = await bob.talk(
        b"a APPEND INBOX CATENATE (TEXT {%d+}\r\n" % len(head) + head + b' URL "' + url + b'")\r\n'
    )
    assert b"a OK" in reply, reply
    box = await store.open("bob", "INBOX")
    uid = (await box.snapshot()).messages[-1].uid
    assert await box.read(uid) == head + b"aGVsbG8gd29ybGQ="
    await ann.talk(b"r RESETKEY\r\n")
    reply = await bob.talk(b'a APPEND INBOX CATENATE (URL "' + url + b'")\r\n')
    assert reply.startswith(b"a NO [BADURL ")


async def test_persona_without_urlauth_refuses_the_commands() -> None:
    store = MemoryStore()
    await store.ensure_user("ann")
    ctx = make_context(store)
    ctx.config = dataclasses.replace(ctx.config, persona="dovecot")
    t = Talker(ctx)
    await t.login("ann")
    for line in (b"a GENURLAUTH x INTERNAL\r\n", b"a URLFETCH x\r\n", b"a RESETKEY\r\n"):
        assert (await t.talk(line)).startswith(b"a BAD Unknown command"), line


async def test_urlfetch_of_odd_urls_is_nil_and_the_session_goes_on() -> None:
    ann, bob, _ = await _two_sessions()
    token = b":internal:" + b"0" * 40
    urls = [
        b"imap://nobody@h/INBOX/;uid=1;urlauth=authuser" + token,
        b"imap://..%2F..@h/INBOX/;uid=1;urlauth=authuser" + token,
        b"imap://ann@h/Nope/;uid=1;urlauth=authuser" + token,
        b"imap://ann@h/INBOX/;uid=1;urlauth=authuser" + token,  # no key yet
        b"not a url",
        b"imap://ann@h/INBOX/;uid=9",  # plain, not bob's
    ]
    for url in urls:
        reply = await bob.talk(b'u URLFETCH "' + url + b'"\r\n')
        assert reply.endswith(b" NIL\r\nu OK Urlfetch completed.\r\n"), (url, reply)
    good = _signed(
        await ann.talk(b'g GENURLAUTH "imap://ann@h/INBOX/;uid=1;urlauth=anonymous" INTERNAL\r\n')
    )
    both = await bob.talk(b"u URLFETCH " + good + b' "' + urls[0] + b'"\r\n')
    assert both.startswith(b"* URLFETCH " + good + b" {%d}\r\n" % len(MULTIPART))
    assert both.endswith(b" NIL\r\nu OK Urlfetch completed.\r\n")
