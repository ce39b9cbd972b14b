"""IMAP core + session transcripts over a MemoryStore (no sockets)."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsrv.store.base import INBOX
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context

MULTIPART = (
    b"From: b@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    b"--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAw==\r\n--XX--\r\n"
)


@pytest.fixture
async def store() -> MemoryStore:
    s = MemoryStore()
    await s.ensure_user("ann")
    await s.deliver("ann", MESSAGE)
    await s.deliver("ann", MULTIPART, flags=["\\Seen"])
    return s


@pytest.fixture
async def imap(store: MemoryStore) -> Talker:
    return Talker(make_context(store))


async def logged_in(store: MemoryStore) -> Talker:
    t = Talker(make_context(store))
    await t.login()
    return t


# -- not authenticated ---------------------------------------------------------------------


async def test_greeting_and_capability(imap: Talker) -> None:
    greeting = imap.greeting()
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert b"AUTH=PLAIN" in greeting and greeting.endswith(b"] mailsrv ready.\r\n")
    reply = await imap.talk(b"a CAPABILITY\r\n")
    assert reply.startswith(b"* CAPABILITY IMAP4rev1") and reply.endswith(
        b"a OK Capability completed.\r\n"
    )


async def test_logindisabled_without_tls_off_loopback(store: MemoryStore) -> None:
    t = Talker(make_context(store), peer="192.0.2.7")
    assert b"LOGINDISABLED" in t.greeting() and b"AUTH=PLAIN" not in t.greeting()
    reply = await t.talk(b"a LOGIN ann secret\r\n")
    assert reply == b"a NO [PRIVACYREQUIRED] Plaintext authentication disallowed without TLS\r\n"


async def test_login_ok_carries_capabilities(imap: Talker) -> None:
    reply = await imap.talk(b"a LOGIN ann secret\r\n")
    assert reply.startswith(b"a OK [CAPABILITY IMAP4rev1 ") and b"MOVE" in reply
    assert b" AUTH=" not in reply  # (URLAUTH=BINARY is no SASL mechanism)
    assert imap.info.user == "ann"


async def test_failed_logins_then_bye(imap: Talker) -> None:
    for _ in range(2):
        reply = await imap.talk(b"a LOGIN ann wrong\r\n")
        assert reply == b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    reply = await imap.talk(b"a LOGIN ann wrong\r\n")
    assert reply.endswith(b"* BYE Too many failed logins\r\n")
    assert imap.session.core.closed


async def test_commands_in_wrong_state(imap: Talker) -> None:
    assert await imap.talk(b"a SELECT INBOX\r\n") == b"a BAD SELECT needs authentication first\r\n"
    await imap.login()
    assert await imap.talk(b"b FETCH 1 FLAGS\r\n") == b"b BAD FETCH needs a selected mailbox\r\n"
    assert await imap.talk(b"c LOGIN ann secret\r\n") == b"c BAD LOGIN is not allowed now\r\n"
    await imap.select()
    reply = await imap.talk(b"d ENABLE UTF8=ACCEPT\r\n")
    assert reply == b"d BAD ENABLE is only allowed before SELECT\r\n"


async def test_authenticate_plain_with_and_without_initial_response(store: MemoryStore) -> None:
    token = base64.b64encode(b"\0ann\0secret")
    t = Talker(make_context(store))
    assert (await t.talk(b"a AUTHENTICATE PLAIN " + token + b"\r\n")).startswith(
        b"a OK [CAPABILITY"
    )
    t = Talker(make_context(store))
    assert await t.talk(b"a AUTHENTICATE PLAIN\r\n") == b"+ \r\n"
    assert (await t.talk(token + b"\r\n")).startswith(b"a OK [CAPABILITY")


async def test_authenticate_login_and_cancel(imap: Talker) -> None:
    assert await imap.talk(b"a AUTHENTICATE LOGIN\r\n") == b"+ VXNlcm5hbWU6\r\n"
    assert await imap.talk(base64.b64encode(b"ann") + b"\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert (await imap.talk(base64.b64encode(b"secret") + b"\r\n")).startswith(b"a OK")
    t = Talker(make_context(MemoryStore()))
    await t.talk(b"b AUTHENTICATE PLAIN\r\n")
    assert await t.talk(b"*\r\n") == b"b BAD Authentication aborted\r\n"
    await t.talk(b"c AUTHENTICATE PLAIN\r\n")
    assert await t.talk(b"!!!\r\n") == b"c BAD Invalid base64 data in AUTHENTICATE response\r\n"
    assert await t.talk(b"d AUTHENTICATE CRAM-MD5\r\n") == (
        b"d NO [CANNOT] Unsupported authentication mechanism\r\n"
    )


async def test_bad_command_budget(store: MemoryStore) -> None:
    t = Talker(make_context(store, bad_commands=3))
    reply = await t.talk(b"a FROB\r\nb FROB\r\nc FROB\r\nd NOOP\r\n")
    assert reply == (
        b"a BAD Unknown command\r\nb BAD Unknown command\r\nc BAD Unknown command\r\n"
        b"* BYE Too many invalid commands\r\n"
    )


async def test_too_big_append_and_literal(imap: Talker) -> None:
    t = Talker(make_context(MemoryStore(), message_size=100))
    await t.login()
    assert await t.talk(b"a APPEND INBOX {500}\r\n") == b"a NO [TOOBIG] Message too large\r\n"
    assert await t.talk(b"b NOOP\r\n") == b"b OK Noop completed.\r\n"


# -- authenticated -------------------------------------------------------------------------


async def test_enable_id_namespace(store: MemoryStore) -> None:
    t = await logged_in(store)
    assert await t.talk(b"a ENABLE IMAP4rev2 UTF8=ACCEPT X-FOO\r\n") == (
        b"* ENABLED IMAP4rev2 UTF8=ACCEPT\r\na OK Enabled.\r\n"
    )
    reply = await t.talk(b'b ID ("name" "test")\r\n')
    assert reply.startswith(b'* ID ("name" "mailsrv" "version" ')
    assert await t.talk(b"c NAMESPACE\r\n") == (
        b'* NAMESPACE (("" "/")) NIL NIL\r\nc OK Namespace completed.\r\n'
    )


async def test_select_and_examine(store: MemoryStore) -> None:
    t = await logged_in(store)
    reply = await t.select()
    assert b"* 2 EXISTS\r\n* 2 RECENT\r\n* OK [UNSEEN 1] First unseen.\r\n" in reply
    assert b"* OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen \\*)]" in reply
    assert b"* OK [UIDNEXT 3] Predicted next UID.\r\n" in reply
    assert reply.endswith(b"S1 OK [READ-WRITE] Select completed.\r\n")
    other = await logged_in(store)
    reply = await other.talk(b"e EXAMINE inbox\r\n")
    assert b"* 0 RECENT" in reply  # the first session took \Recent
    assert reply.endswith(b"e OK [READ-ONLY] Examine completed.\r\n")
    assert (
        await other.talk(b"f STORE 1 +FLAGS (x)\r\n")
        == b"f NO [READ-ONLY] Mailbox is read-only\r\n"
    )
    await other.talk(b"g FETCH 1 BODY[]\r\n")
    info = (await (await store.open("ann")).snapshot()).messages[0]
    assert "\\Seen" not in info.flags  # EXAMINE never sets \Seen


async def test_select_missing_folder_leaves_selected_state(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select()
    reply = await t.talk(b"a SELECT Nope\r\n")
    assert (
        reply
        == b"* OK [CLOSED] Previous mailbox closed.\r\na NO [NONEXISTENT] Mailbox doesn't exist\r\n"
    )
    assert await t.talk(b"b FETCH 1 FLAGS\r\n") == b"b BAD FETCH needs a selected mailbox\r\n"


async def test_folder_management(store: MemoryStore) -> None:
    t = await logged_in(store)
    assert re.fullmatch(
        rb"a OK \[MAILBOXID \(F\w+\)\] Create completed\.\r\n",
        await t.talk(b"a CREATE Work/Projects\r\n"),
    )
    assert (
        await t.talk(b"b CREATE Work/Projects\r\n")
        == b"b NO [ALREADYEXISTS] Mailbox already exists\r\n"
    )
    reply = await t.talk(b"c CREATE a.b\r\n")
    assert reply.startswith(b"c NO [CANNOT] ")
    assert re.fullmatch(
        rb"d OK \[MAILBOXID \(F\w+\)\] Create completed\.\r\n",
        await t.talk(b"d CREATE Spam (USE (\\Junk))\r\n"),
    )
    reply = await t.talk(b'e LIST "" %\r\n')
    assert b'* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "Work"\r\n' in reply
    assert b'* LIST (\\HasNoChildren \\Junk) "/" "Spam"\r\n' in reply
    assert b"Projects" not in reply
    assert await t.talk(b"f LIST Work/ *\r\n") == (
        b'* LIST (\\HasNoChildren) "/" "Work/Projects"\r\nf OK List completed.\r\n'
    )
    assert await t.talk(b"g RENAME Work/Projects Done\r\n") == b"g OK Rename completed.\r\n"
    assert await t.talk(b"h DELETE Done\r\n") == b"h OK Delete completed.\r\n"
    assert await t.talk(b"i DELETE Done\r\n") == b"i NO [NONEXISTENT] Mailbox doesn't exist\r\n"
    assert (await t.talk(b"j DELETE INBOX\r\n")).startswith(b"j NO [CANNOT] ")
    assert await t.talk(b"k CREATE inbox\r\n") == b"k NO [ALREADYEXISTS] Mailbox already exists\r\n"


async def test_list_special_cases(store: MemoryStore) -> None:
    t = await logged_in(store)
    assert (
        await t.talk(b'a LIST "" ""\r\n')
        == b'* LIST (\\Noselect) "/" ""\r\na OK List completed.\r\n'
    )
    reply = await t.talk(b'b LIST (SPECIAL-USE) "" *\r\n')
    assert b'"INBOX"' not in reply and b"\\Trash" in reply
    await t.talk(b"c UNSUBSCRIBE Junk\r\n")
    reply = await t.talk(b'd LIST "" * RETURN (SUBSCRIBED STATUS (MESSAGES UNSEEN))\r\n')
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" "INBOX"\r\n' in reply
    assert b'* STATUS "INBOX" (MESSAGES 2 UNSEEN 1)\r\n' in reply
    assert b'(\\HasNoChildren \\Junk) "/" "Junk"' in reply
    reply = await t.talk(b'e LSUB "" *\r\n')
    assert b'* LSUB (\\HasNoChildren) "/" "INBOX"' in reply and b"Junk" not in reply
    reply = await t.talk(b'f LIST "" inbox\r\n')
    assert reply == b'* LIST (\\HasNoChildren) "/" "INBOX"\r\nf OK List completed.\r\n'


async def test_international_names(store: MemoryStore) -> None:
    t = await logged_in(store)
    assert re.fullmatch(
        rb"a OK \[MAILBOXID \(F\w+\)\] Create completed\.\r\n",
        await t.talk(b"a CREATE &AMk-t&AOk-\r\n"),
    )
    folders = [f.name for f in await store.list_folders("ann")]
    assert "\u00c9t\u00e9" in folders
    assert b'"&AMk-t&AOk-"' in await t.talk(b'b LIST "" *\r\n')
    await t.talk(b"c ENABLE UTF8=ACCEPT\r\n")
    assert '"\u00c9t\u00e9"'.encode() in await t.talk(b'd LIST "" *\r\n')
    assert (await t.talk(b"e CREATE &Jjo\r\n")).startswith(b"e OK")  # UTF-8 mode: literal name


async def test_status_and_append(store: MemoryStore) -> None:
    t = await logged_in(store)
    reply = await t.talk(b"a STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE DELETED RECENT)\r\n")
    size = len(MESSAGE) + len(MULTIPART.replace(b"\r\n", b"\r\n"))
    assert reply == (
        b'* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3 UNSEEN 1 SIZE %d DELETED 0 RECENT 2)\r\n'
        b"a OK Status completed.\r\n" % size
    )
    reply = await t.talk(b'b APPEND Drafts (\\Draft) " 7-Feb-1994 21:52:25 -0800" {5}\r\nhello\r\n')
    assert reply.startswith(b"+ Ready for literal data\r\nb OK [APPENDUID ")
    assert reply.endswith(b" 1] Append completed.\r\n")
    drafts = (await (await store.open("ann", "Drafts")).snapshot()).messages
    assert drafts[0].flags == frozenset({"\\Draft"}) and drafts[0].internal_date == 760686745.0
    reply = await t.talk(b"c APPEND Nope {1+}\r\nx\r\n")
    assert reply == b"c NO [TRYCREATE] Mailbox doesn't exist\r\n"


# -- selected ------------------------------------------------------------------------------


async def test_fetch_items(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select()
    reply = await t.talk(
        b"a FETCH 1 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])\r\n"
    )
    assert reply == (
        b"* 1 FETCH (UID 1 RFC822.SIZE %d FLAGS (\\Recent) "
        b"BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: hello\r\n\r\n)\r\n"
        b"a OK Fetch completed.\r\n" % len(MESSAGE)
    )
    reply = await t.talk(b"b FETCH 2 (BODY[1] BINARY.PEEK[2] BINARY.SIZE[2] BODY[]<0.4>)\r\n")
    assert reply == (
        b"* 2 FETCH (BODY[1] {8}\r\npart one BINARY[2] ~{4}\r\n\x00\x01\x02\x03 "
        b"BINARY.SIZE[2] 4 BODY[]<0> {4}\r\nFrom)\r\nb OK Fetch completed.\r\n"
    )
    reply = await t.talk(b"c UID FETCH 1 (BODY[TEXT])\r\n")
    assert reply == (
        b"* 1 FETCH (UID 1 BODY[TEXT] {11}\r\nHello Bob\r\n FLAGS (\\Seen \\Recent))\r\n"
        b"c OK Fetch completed.\r\n"
    )
    reply = await t.talk(b"d FETCH 1:2 (ENVELOPE BODYSTRUCTURE)\r\n")
    assert b'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "hello" (("Ann" NIL "ann"' in reply
    assert b'BODYSTRUCTURE (("text" "plain"' in reply
    assert await t.talk(b"e FETCH 3 FLAGS\r\n") == b"e BAD Invalid messageset (no such message)\r\n"
    assert (
        await t.talk(b"f UID FETCH 3:* FLAGS\r\n")
        == b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\r\nf OK Fetch completed.\r\n"
    )


async def test_fetch_parses_each_message_once(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select()
    await t.talk(b"a FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)\r\n")
    box = await store.open("ann")
    assert await box.get_cached(1, "imap.envelope") is not None
    assert await box.get_cached(2, "imap.bodystructure") is not None
    await box.set_cached(1, "imap.envelope", b"(CACHED)")
    assert b"ENVELOPE (CACHED)" in await t.talk(b"b FETCH 1 ENVELOPE\r\n")


async def test_store_copy_move_expunge(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select()
    assert await t.talk(b"a STORE 1 +FLAGS (\\Flagged $Work)\r\n") == (
        b"* FLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen $Work)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen $Work \\*)] "
        b"Flags permitted.\r\n"
        b"* 1 FETCH (FLAGS (\\Flagged $Work \\Recent))\r\na OK Store completed.\r\n"
    )  # a new keyword is announced first (RFC 9051 §7.3.5)
    assert await t.talk(b"b UID STORE 2 -FLAGS.SILENT (\\Seen)\r\n") == b"b OK Store completed.\r\n"
    reply = await t.talk(b"c COPY 1:2 Archive\r\n")
    assert reply.startswith(b"c OK [COPYUID ") and reply.endswith(b" 1:2 1:2] Copy completed.\r\n")
    assert await t.talk(b"d COPY 1 Nope\r\n") == b"d NO [TRYCREATE] Mailbox doesn't exist\r\n"
    reply = await t.talk(b"e UID MOVE 1 Trash\r\n")
    assert reply.startswith(b"* OK [COPYUID ") and reply.endswith(
        b" 1 1] Moved UIDs.\r\n* 1 EXPUNGE\r\ne OK Move completed.\r\n"
    )
    await t.talk(b"f STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    assert await t.talk(b"g EXPUNGE\r\n") == b"* 1 EXPUNGE\r\ng OK Expunge completed.\r\n"
    assert (await (await store.open("ann")).snapshot()).messages == ()
    archived = (await (await store.open("ann", "Archive")).snapshot()).messages
    assert "$Work" in archived[0].flags


async def test_uid_expunge_close_unselect(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select()
    await t.talk(b"a STORE 1:2 +FLAGS.SILENT (\\Deleted)\r\n")
    assert await t.talk(b"b UID EXPUNGE 2\r\n") == b"* 2 EXPUNGE\r\nb OK Expunge completed.\r\n"
    assert await t.talk(b"c UNSELECT\r\n") == b"c OK Unselect completed.\r\n"
    assert len((await (await store.open("ann")).snapshot()).messages) == 1
    await t.select()
    assert await t.talk(b"d CLOSE\r\n") == b"d OK Close completed.\r\n"
    assert (await (await store.open("ann")).snapshot()).messages == ()
    assert await t.talk(b"e CLOSE\r\n") == b"e BAD CLOSE needs a selected mailbox\r\n"


# -- live view -----------------------------------------------------------------------------


async def test_two_sessions_see_each_others_changes(store: MemoryStore) -> None:
    a, b = await logged_in(store), await logged_in(store)
    await a.select()
    await b.select()
    await a.talk(b"a1 STORE 1 +FLAGS.SILENT (\\Flagged)\r\n")
    assert (
        await b.talk(b"b1 NOOP\r\n")
        == b"* 1 FETCH (FLAGS (\\Flagged))\r\nb1 OK Noop completed.\r\n"
    )
    await a.talk(b"a2 STORE 1 +FLAGS.SILENT (\\Deleted)\r\na3 EXPUNGE\r\n")
    await store.deliver("ann", MESSAGE)
    # FETCH may not announce the expunge; sequence numbers stay as b knows them
    reply = await b.talk(b"b2 FETCH 2 (UID)\r\n")
    assert reply == (
        b"* 2 FETCH (UID 2)\r\n* 3 EXISTS\r\n* 1 RECENT\r\nb2 OK Fetch completed.\r\n"
    )  # b saw the new message first, so \\Recent is b's
    reply = await b.talk(b"b3 FETCH 1 (BODY.PEEK[])\r\n")
    assert reply == b"b3 NO [EXPUNGEISSUED] Some of the requested messages no longer exist\r\n"
    assert await b.talk(b"b4 NOOP\r\n") == b"* 1 EXPUNGE\r\nb4 OK Noop completed.\r\n"
    assert await b.talk(b"b5 FETCH 1:* (UID)\r\n") == (
        b"* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 3)\r\nb5 OK Fetch completed.\r\n"
    )


async def test_uid_commands_include_uid_in_flag_updates(store: MemoryStore) -> None:
    a, b = await logged_in(store), await logged_in(store)
    await a.select()
    await b.select()
    await a.talk(b"a1 STORE 2 +FLAGS.SILENT (\\Answered)\r\n")
    reply = await b.talk(b"b1 UID SEARCH UID 1\r\n")
    assert b"* 2 FETCH (UID 2 FLAGS (\\Answered \\Seen))\r\n" in reply


async def test_idle_woken_by_delivery(store: MemoryStore) -> None:
    import time

    t = await logged_in(store)
    await t.select()
    assert await t.talk(b"i IDLE\r\n") == b"+ idling\r\n"
    start = time.monotonic()
    await store.deliver("ann", MESSAGE, folder="Trash")  # another folder: nothing to say
    assert await t.idle_events(timeout=0.2) == b""
    await store.deliver("ann", MESSAGE)
    pushed = await t.idle_events()
    print(f"IDLE push after {1000 * (time.monotonic() - start):.2f} ms")
    assert pushed == b"* 3 EXISTS\r\n* 3 RECENT\r\n"  # this session got \\Recent of all 3
    assert await t.talk(b"DONE\r\n") == b"i OK Idle completed.\r\n"
    assert await t.talk(b"j IDLE\r\n") == b"+ idling\r\n"
    assert await t.talk(b"NOTDONE\r\n") == b"j BAD Expected DONE\r\n"


async def test_rev2_session_gets_no_recent(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.talk(b"e ENABLE IMAP4rev2\r\n")
    reply = await t.select()
    assert b"RECENT" not in reply and b'* LIST () "/" "INBOX"\r\n' in reply
    await store.deliver("ann", MESSAGE, folder=INBOX)
    assert await t.talk(b"n NOOP\r\n") == b"* 3 EXISTS\r\nn OK Noop completed.\r\n"


async def test_logout(imap: Talker) -> None:
    assert await imap.talk(b"z LOGOUT\r\n") == b"* BYE Logging out\r\nz OK Logout completed.\r\n"
    assert imap.session.core.closed


async def test_search_forms(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select()
    assert await t.talk(b"a SEARCH UNSEEN\r\n") == b"* SEARCH 1\r\na OK Search completed.\r\n"
    assert await t.talk(b"b UID SEARCH CHARSET UTF-8 SUBJECT parts\r\n") == (
        b"* SEARCH 2\r\nb OK Search completed.\r\n"
    )
    assert await t.talk(b"c SEARCH BODY Bob\r\n") == b"* SEARCH 1\r\nc OK Search completed.\r\n"
    assert await t.talk(b"d SEARCH RETURN (MIN MAX COUNT ALL) ALL\r\n") == (
        b'* ESEARCH (TAG "d") MIN 1 MAX 2 ALL 1:2 COUNT 2\r\nd OK Search completed.\r\n'
    )
    assert await t.talk(b"e UID SEARCH RETURN (COUNT) DELETED\r\n") == (
        b'* ESEARCH (TAG "e") UID COUNT 0\r\ne OK Search completed.\r\n'
    )
    reply = await t.talk(b"f SEARCH CHARSET KOI8-R ALL\r\n")
    assert reply.startswith(b"f NO [BADCHARSET")
    assert (await t.talk(b"g SEARCH FROBNICATE\r\n")).startswith(b"g BAD ")


async def test_searchres_saved_result(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select()
    assert await t.talk(b"a UID SEARCH RETURN (SAVE) SEEN\r\n") == b"a OK Search completed.\r\n"
    assert await t.talk(b"b FETCH $ (UID)\r\n") == b"* 2 FETCH (UID 2)\r\nb OK Fetch completed.\r\n"
    reply = await t.talk(b"c UID STORE $ +FLAGS.SILENT (\\Flagged)\r\nd SEARCH FLAGGED\r\n")
    assert reply == b"c OK Store completed.\r\n* SEARCH 2\r\nd OK Search completed.\r\n"
    assert await t.talk(b"e SEARCH UID $\r\n") == b"* SEARCH 2\r\ne OK Search completed.\r\n"


async def test_rev2_search_answers_esearch(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.talk(b"e ENABLE IMAP4rev2\r\n")
    await t.select()
    assert await t.talk(b"s SEARCH ALL\r\n") == (
        b'* ESEARCH (TAG "s") ALL 1:2\r\ns OK Search completed.\r\n'
    )


async def test_selected_folder_deleted_or_uidvalidity_changed(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.talk(b"c CREATE Tmp\r\n")
    await t.select("Tmp")
    await store.delete_folder("ann", "Tmp")
    reply = await t.talk(b"n NOOP\r\n")
    assert reply.startswith(b"* BYE Selected mailbox was deleted")
    assert t.session.core.closed
    u = await logged_in(store)
    await u.select()
    await (await store.open("ann")).uidvalidity_bump()
    assert (await u.talk(b"n NOOP\r\n")).startswith(b"* BYE ")


async def test_star_in_an_empty_mailbox_names_nothing(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.select("Trash")
    assert await t.talk(b"a FETCH 1:* FLAGS\r\n") == b"a OK Fetch completed.\r\n"
    assert await t.talk(b"b FETCH 1 FLAGS\r\n") == b"b BAD Invalid messageset (no such message)\r\n"
    assert await t.talk(b"c UID FETCH 1:* FLAGS\r\n") == b"c OK Fetch completed.\r\n"


FRAGMENTS = [
    b"1",
    b"2:*",
    b"$",
    b"*",
    b"INBOX",
    b'"Sent"',
    b"(FLAGS)",
    b"(UID BODY.PEEK[1.MIME] BINARY[2]<0.3>)",
    b"BODY[HEADER.FIELDS (SUBJECT)]",
    b"+FLAGS",
    b"(\\Seen)",
    b"RETURN",
    b"(SAVE MIN)",
    b"ALL",
    b"OR",
    b"SUBJECT",
    b"{3+}\r\nabc",
    b"(",
    b")",
    b"NIL",
    b"\xff",
    b'"unterminated',
    b"%",
    b"UNSEEN",
    b"CHARSET",
]
COMMANDS = [
    b"FETCH",
    b"UID FETCH",
    b"STORE",
    b"UID STORE",
    b"SEARCH",
    b"UID SEARCH",
    b"COPY",
    b"UID MOVE",
    b"LIST",
    b"STATUS",
    b"SELECT",
    b"EXAMINE",
    b"APPEND",
    b"CREATE",
    b"RENAME",
    b"EXPUNGE",
    b"UID EXPUNGE",
    b"NOOP",
    b"ENABLE",
    b"ID",
]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(COMMANDS), st.lists(st.sampled_from(FRAGMENTS), max_size=4)),
        max_size=8,
    )
)
async def test_command_soup_never_breaks_the_session(
    store: MemoryStore, soup: list[tuple[bytes, list[bytes]]]
) -> None:
    t = await logged_in(store)
    await t.select()
    for name, args in soup:
        line = b"t " + name + b"".join(b" " + a for a in args) + b"\r\n"
        reply = await t.talk(line)
        assert b"SERVERBUG" not in reply, (line, reply)
    assert (await t.talk(b"z NOOP\r\n")).endswith(b"z OK Noop completed.\r\n")


async def test_blocked_address_is_told_so(store: MemoryStore) -> None:
    ctx = make_context(store, auth_failures_per_ip=2)
    t = Talker(ctx)
    await t.talk(b"a LOGIN ann x\r\nb LOGIN ann y\r\n")
    assert await t.talk(b"c LOGIN ann secret\r\n") == (
        b"c NO [UNAVAILABLE] Too many failed logins from your address\r\n"
    )


async def test_rename_inbox_moves_its_messages(store: MemoryStore) -> None:
    t = await logged_in(store)
    assert await t.talk(b"a RENAME INBOX Old\r\n") == b"a OK Rename completed.\r\n"
    reply = await t.talk(b"b STATUS INBOX (MESSAGES)\r\nc STATUS Old (MESSAGES)\r\n")
    assert b'* STATUS "INBOX" (MESSAGES 0)' in reply and b'* STATUS "Old" (MESSAGES 2)' in reply


async def test_fetch_rfc822_forms_and_macros(store: MemoryStore) -> None:
    t = await logged_in(store)
    await t.talk(b"x EXAMINE INBOX\r\n")
    header = MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 4]
    reply = await t.talk(b"a FETCH 1 (RFC822.HEADER RFC822.TEXT)\r\n")
    assert reply == (
        b"* 1 FETCH (RFC822.HEADER {%d}\r\n%s RFC822.TEXT {11}\r\nHello Bob\r\n)\r\n"
        b"a OK Fetch completed.\r\n" % (len(header), header)
    )
    reply = await t.talk(b"b FETCH 1 RFC822\r\n")
    assert reply == b"* 1 FETCH (RFC822 {%d}\r\n%s)\r\nb OK Fetch completed.\r\n" % (
        len(MESSAGE),
        MESSAGE,
    )
    reply = await t.talk(b"c FETCH 1 FAST\r\n")
    assert reply.startswith(b'* 1 FETCH (FLAGS (\\Recent) INTERNALDATE "')
    assert reply.endswith(b" RFC822.SIZE %d)\r\nc OK Fetch completed.\r\n" % len(MESSAGE))
    reply = await t.talk(b"d FETCH 1 BODY.PEEK[TEXT]<5.1000>\r\n")
    assert reply == b"* 1 FETCH (BODY[TEXT]<5> {6}\r\n Bob\r\n)\r\nd OK Fetch completed.\r\n"
    reply = await t.talk(b"e FETCH 2 (BODY.PEEK[9] BODY)\r\n")
    assert reply.startswith(b'* 2 FETCH (BODY[9] NIL BODY (("text" "plain"')


async def test_keywords_of_new_messages_are_announced_in_flags_before_exists(
    store: MemoryStore,
) -> None:
    """RFC 9051 §7.3.5: a keyword another client brings in with a new message is in ``* FLAGS``
    before any FETCH shows it (imaptest's stress mode checks exactly this)."""
    t = await logged_in(store)
    reply = await t.select()
    assert b"$Label1" not in reply
    await store.deliver("ann", MESSAGE, flags=["$Label1"])
    reply = await t.talk(b"n NOOP\r\n")
    flags_at = reply.index(b"* FLAGS (")
    assert b"$Label1" in reply[flags_at : reply.index(b"\r\n", flags_at)]
    assert b"* OK [PERMANENTFLAGS (" in reply
    assert flags_at < reply.index(b"* 3 EXISTS\r\n")
    fetched = await t.talk(b"f FETCH 3 FLAGS\r\n")
    assert b"$Label1" in fetched and b"* FLAGS" not in fetched  # told once
