"""Fuzzing campaigns over the protocol cores, sessions, the MIME parser and SMTP ingress.

    python -m tests.fuzz [--minutes N | --examples N] [--target NAME ...] [--list]

Each target is a hypothesis property: a strategy that makes hostile input (random bytes, valid
commands with damaged parts, huge numbers, deep nesting, NULs, 8-bit bytes, unterminated
literals) and a check that the code under test answers it properly. What "properly" means:

- POP3 / IMAP cores: every input is cut into commands or ``InvalidCommand`` values, never an
  exception; feeding the same bytes whole or in random pieces gives the same commands.
- POP3 / IMAP sessions (core + session + ``MemoryStore``, no sockets): random command
  sequences never raise, never log an internal error, and every command gets exactly one
  reply (POP3: one status line or one dot-terminated block; IMAP: exactly one tagged line).
- MIME: ``parse_message`` takes any bytes; offsets stay in bounds; BODYSTRUCTURE and ENVELOPE
  are well-formed IMAP lists; sections and BINARY never raise (but for an unknown encoding).
- Names: a user or folder name the store accepts always maps inside the user's root.
- SMTP ingress: any RCPT address is refused with a 5xx or resolves to a valid local user.

The unit tests (tests/unit/test_fuzz_*.py) run the same properties with a few examples each;
``make fuzz`` runs long campaigns and prints how many inputs were tried and what was found.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsrv.auth import Authenticator
from mailsrv.config import Config, Limits
from mailsrv.context import ServerContext
from mailsrv.errors import PeerError
from mailsrv.imap.bodystructure import body_structure
from mailsrv.imap.commands import InvalidCommand as ImapInvalid
from mailsrv.imap.core import ReadMode
from mailsrv.imap.dispatch import run_ready
from mailsrv.imap.envelope import envelope
from mailsrv.imap.framing import NEED_DATA as IMAP_NEED_DATA
from mailsrv.imap.framing import CommandFramer
from mailsrv.imap.mailbox_names import BadMailboxName, decode_name
from mailsrv.imap.parser import parse_command as imap_parse
from mailsrv.imap.sections import binary_section, section_bytes
from mailsrv.imap.server_state import ImapServerState
from mailsrv.imap.session import ImapSession
from mailsrv.imap.tokens import SectionSpec
from mailsrv.message.structure import MimePart, parse_message
from mailsrv.message.transfer_encoding import UnknownTransferEncoding
from mailsrv.pop3 import commands as pc
from mailsrv.pop3.protocol import NEED_DATA as POP3_NEED_DATA
from mailsrv.pop3.protocol import Pop3Protocol
from mailsrv.pop3.responses import Continuation, Err, Ok
from mailsrv.pop3.session import Pop3Session
from mailsrv.store.base import InvalidName
from mailsrv.store.layout import folder_dir
from mailsrv.store.memory import MemoryStore
from mailsrv.store.names import check_folder_name, check_user_name

CORPUS = Path(__file__).resolve().parent / "data" / "mime"

# -- shared pieces -----------------------------------------------------------------------------

#: Bytes that break parsers: NUL, CR/LF alone, 8-bit, quotes, parentheses, braces, backslash.
NASTY = [b"\x00", b"\r", b"\n", b"\xff", b"\xc3\xa9", b'"', b"(", b")", b"{", b"}", b"\\", b"*"]
HUGE_NUMBERS = ["0", "-1", "4294967295", "4294967296", "99999999999999999999999", "1e9", "0x10"]


def _nasty_bytes(max_size: int = 40) -> st.SearchStrategy[bytes]:
    chunk = st.one_of(st.sampled_from(NASTY), st.binary(max_size=8))
    return st.lists(chunk, max_size=max_size).map(b"".join)


def _word() -> st.SearchStrategy[bytes]:
    """An argument: usually plausible, sometimes hostile."""
    return st.one_of(
        st.sampled_from([b"1", b"2", b"*", b"1:*", b"INBOX", b"ann", b"secret", b"", b"NIL"]),
        st.sampled_from(HUGE_NUMBERS).map(str.encode),
        st.text(max_size=12).map(lambda s: s.encode("utf-8")),
        _nasty_bytes(6),
    )


def _damage(data: bytes, cuts: list[tuple[int, bytes]]) -> bytes:
    """Insert or replace bytes at the given positions (a mutation of a valid input)."""
    out = bytearray(data)
    for pos, junk in cuts:
        at = pos % (len(out) + 1)
        if junk:
            out[at:at] = junk
        elif out:
            del out[at % len(out)]
    return bytes(out)


_CUTS = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from([*NASTY, b""])), max_size=4)


def _chunks(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    pos = 0
    for size in sizes:
        if pos >= len(data):
            return
        yield data[pos : pos + size]
        pos += size
    if pos < len(data):
        yield data[pos:]


class InternalErrorLogged(AssertionError):
    """The code under test caught an unexpected exception and logged it as an internal error."""


class _ErrorCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_internal_errors() -> Iterator[None]:
    """Fail when anything under ``mailsrv`` logs at ERROR (a caught, unexpected exception)."""
    catcher = _ErrorCatcher()
    logger = logging.getLogger("mailsrv")
    logger.addHandler(catcher)
    try:
        yield
    finally:
        logger.removeHandler(catcher)
    if catcher.records:
        rec = catcher.records[0]
        detail = "".join(traceback.format_exception(*rec.exc_info)) if rec.exc_info else ""
        raise InternalErrorLogged(f"{rec.name}: {rec.getMessage()}\n{detail}")


def make_context(**limits: Any) -> ServerContext:
    config = Config(dev=False, limits=dataclasses.replace(Limits(auth_failure_delay=0), **limits))
    auth = Authenticator(config)
    auth.add_user("ann", "secret")
    auth.add_user("bob", "secret")
    return ServerContext(config, MemoryStore(), auth, None)


SEED_MESSAGES = [
    b"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: hello\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <1@example.com>\r\n\r\nHello Bob\r\n",
    b"Subject: two\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\n"
    b"Content-Type: text/plain\r\n\r\n.dot line\r\n--xx\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\n\r\ninner body\r\n--xx--\r\n",
    b"no header at all",
]


async def _seeded(ctx: ServerContext) -> None:
    for user in ("ann", "bob"):
        await ctx.store.ensure_user(user)
        for msg in SEED_MESSAGES:
            await ctx.store.deliver(user, msg)


# -- POP3 core ---------------------------------------------------------------------------------

POP3_VERBS = [
    *[
        "USER",
        "PASS",
        "APOP",
        "AUTH",
        "CAPA",
        "STLS",
        "QUIT",
        "STAT",
        "LIST",
        "RETR",
        "DELE",
        "NOOP",
        "RSET",
        "TOP",
        "UIDL",
    ],
    "user",
    "Retr",
    "XTND",
    "",
]


@st.composite
def pop3_line(draw: st.DrawFn) -> bytes:
    verb = draw(st.sampled_from(POP3_VERBS)).encode()
    args = draw(st.lists(_word(), max_size=3))
    line = b" ".join([verb, *args])
    if draw(st.booleans()):
        line = _damage(line, draw(_CUTS))
    if draw(st.integers(0, 20)) == 0:
        line += b"x" * draw(st.integers(200, 9000))
    return line + draw(st.sampled_from([b"\r\n", b"\n", b"\r\n", b"\r\r\n"]))


pop3_stream = st.one_of(
    st.lists(pop3_line(), max_size=12).map(b"".join),
    st.binary(max_size=600),
)


def _pop3_commands(chunks: Iterator[bytes]) -> list[object]:
    core = Pop3Protocol()
    seen: list[object] = []
    for chunk in chunks:
        core.receive_data(chunk)
        while (cmd := core.next_command()) is not POP3_NEED_DATA:
            assert isinstance(cmd, pc.Command | pc.InvalidCommand), cmd
            seen.append(cmd)
            if isinstance(cmd, pc.Auth | pc.SaslResponse) and len(seen) % 2:
                core.send(Continuation(""))
            else:
                core.send(Ok() if len(seen) % 3 else Err("no"))
    return seen


def check_pop3_core(data: bytes, sizes: list[int]) -> None:
    """Any bytes become commands; whole or in pieces, the same ones."""
    whole = _pop3_commands(iter([data]))
    pieces = _pop3_commands(_chunks(data, sizes))
    assert whole == pieces, (whole, pieces)


# -- POP3 session ------------------------------------------------------------------------------

_MULTI_OK = re.compile(rb"\+OK[^\r\n]*\r\n(?:.*\r\n)?\.\r\n\Z", re.S)
_SINGLE = re.compile(rb"(\+OK|-ERR|\+)( [^\r\n]*)?\r\n\Z")


@st.composite
def pop3_session_script(draw: st.DrawFn) -> list[bytes]:
    script: list[bytes] = []
    login = draw(st.sampled_from(["none", "user", "plain", "login"]))
    if login == "user":
        script += [b"USER ann", b"PASS secret"]
    elif login == "plain":
        script += [b"AUTH PLAIN " + base64.b64encode(b"\0ann\0secret")]
    elif login == "login":
        script += [b"AUTH LOGIN", base64.b64encode(b"ann"), base64.b64encode(b"secret")]
    for line in draw(st.lists(pop3_line(), max_size=15)):
        # One command per feed: cut at the first line end, keep the line as the fuzzer made it.
        end = line.find(b"\n")
        script.append(line[: end if end >= 0 else None].rstrip(b"\r"))
    return script


async def _run_pop3_session(script: list[bytes]) -> None:
    ctx = make_context()
    await _seeded(ctx)
    info = ctx.sessions.open("pop3", "127.0.0.1", 110)
    session = Pop3Session(ctx, info, tls=False)
    greeting = session.greeting()
    assert greeting.startswith(b"+OK ") and greeting.endswith(b"\r\n")
    try:
        for line in script:
            in_sasl = session.core.in_sasl
            out = await session.feed(line + b"\r\n")
            data = out.data
            if len(line) + 2 > ctx.config.limits.pop3_line and not in_sasl:
                assert data.startswith(b"-ERR"), (line[:80], data)
            assert _SINGLE.match(data) or _MULTI_OK.match(data), (line[:200], data[:300])
            if out.close:
                return
    finally:
        await session.close()


def check_pop3_session(script: list[bytes]) -> None:
    with no_internal_errors():
        asyncio.run(_run_pop3_session(script))


# -- IMAP parser and core ----------------------------------------------------------------------

IMAP_COMMANDS = [
    b"CAPABILITY",
    b"NOOP",
    b"ID NIL",
    b'ID ("name" "x")',
    b"LOGIN ann secret",
    b'LOGIN "ann" "secret"',
    b"AUTHENTICATE PLAIN " + base64.b64encode(b"\0ann\0secret"),
    b"ENABLE UTF8=ACCEPT CONDSTORE QRESYNC",
    b"SELECT INBOX",
    b"EXAMINE INBOX",
    b"SELECT INBOX (CONDSTORE)",
    b"CREATE Archive",
    b'CREATE "a/b/c"',
    b"CREATE &AC4ALg-",
    b"DELETE Archive",
    b"RENAME Archive Old",
    b"SUBSCRIBE INBOX",
    b"UNSUBSCRIBE INBOX",
    b'LIST "" *',
    b'LIST (SPECIAL-USE) "" "%" RETURN (STATUS (MESSAGES))',
    b'LSUB "" *',
    b"NAMESPACE",
    b"STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)",
    b"APPEND INBOX (\\Seen) {5+}\r\nhello",
    b'APPEND INBOX "07-Feb-1994 21:52:25 -0800" {3+}\r\nabc',
    b"APPEND INBOX ~{5+}\r\nhello",
    b"APPEND INBOX {5+}\r\nhello (\\Seen) {3+}\r\nabc ~{2+}\r\nhi",
    b'APPEND Drafts CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1/;SECTION=HEADER" TEXT {3+}\r\nabc)',
    b'APPEND Drafts CATENATE (URL ";UID=1/;PARTIAL=0.10") CATENATE (TEXT ~{2+}\r\nhi)',
    b"GETQUOTAROOT INBOX",
    b'GETQUOTA "User quota"',
    b'SETQUOTA "User quota" (STORAGE 512)',
    b"NOTIFY SET STATUS (selected (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge FlagChange))"
    b" (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))",
    b'NOTIFY SET (subtree ("Archive" INBOX) (MessageNew MessageExpunge)) (inboxes NONE)',
    b"NOTIFY SET (selected-delayed (MessageNew MessageExpunge)) (subscribed (FlagChange))",
    b"NOTIFY SET (mailboxes {4+}\r\nWork (AnnotationChange))",
    b"NOTIFY NONE",
    b"COMPRESS DEFLATE",
    b"CHECK",
    b"CLOSE",
    b"UNSELECT",
    b"EXPUNGE",
    b"UID EXPUNGE 1:*",
    b"SEARCH ALL",
    b"SEARCH OR FROM ann (SUBJECT hello NOT SEEN) LARGER 1",
    b"UID SEARCH RETURN (MIN MAX COUNT SAVE) 1:* BODY x",
    b"SEARCH RETURN (PARTIAL 1:10 COUNT) YOUNGER 3600",
    b"SEARCH RETURN (UPDATE) SEEN",
    b"SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
    b"UID SORT RETURN (MIN MAX PARTIAL -1:-5 UPDATE) (DISPLAYFROM SIZE) US-ASCII UNSEEN",
    b"SORT RETURN (ALL) (ARRIVAL CC TO FROM DISPLAYTO) UTF-8 OR SEEN 1:3",
    b"THREAD REFERENCES UTF-8 ALL",
    b"UID THREAD REFS US-ASCII SUBJECT hello",
    b"THREAD ORDEREDSUBJECT UTF-8 NOT DELETED",
    b'CANCELUPDATE "T0003Q"',
    b"FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)",
    b"FETCH 1 (BODY[] BODY.PEEK[HEADER.FIELDS (FROM TO)] BODY[1.2.MIME] BODY[TEXT]<0.10>)",
    b"FETCH 1:2 (BINARY[1] BINARY.SIZE[2] BODY[1.1.HEADER] RFC822.HEADER)",
    b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)",
    b"STORE 1 +FLAGS (\\Deleted $Junk)",
    b"UID STORE 1:* -FLAGS.SILENT (\\Seen)",
    b"STORE 1:* FLAGS (\\Answered) (UNCHANGEDSINCE 5)",
    b"STORE 1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Answered)",
    b"FETCH 1:* (MODSEQ FLAGS) (CHANGEDSINCE 3)",
    b"SELECT INBOX (QRESYNC (1 2 1:5 (1:2 1:2)))",
    b"EXAMINE INBOX (QRESYNC (1 2))",
    b"SEARCH MODSEQ 5",
    b'SEARCH RETURN (MIN MAX) MODSEQ "/flags/\\\\seen" all 1',
    b"COPY 1:* Archive",
    b"UID MOVE 1 Archive",
    b"MOVE $ INBOX",
    b"IDLE",
    b"LOGOUT",
]


def _imap_arg_mutation(command: bytes, draw: st.DrawFn) -> bytes:
    words = command.split(b" ")
    kind = draw(st.integers(0, 5))
    if kind == 0 and len(words) > 1:
        words[draw(st.integers(1, len(words) - 1))] = draw(_word())
    elif kind == 1:
        words.append(draw(_word()))
    elif kind == 2:
        return _damage(command, draw(_CUTS))
    elif kind == 3:
        return command.replace(b"1", draw(st.sampled_from(HUGE_NUMBERS)).encode())
    elif kind == 4:
        depth = draw(st.integers(1, 300))
        words.append(b"(" * depth + b"x" + b")" * draw(st.integers(0, depth)))
    return b" ".join(words)


@st.composite
def imap_command(draw: st.DrawFn, tag: bytes = b"a1") -> bytes:
    """One tagged command (body without its line end), often damaged."""
    body = draw(st.sampled_from(IMAP_COMMANDS))
    if draw(st.booleans()):
        body = _imap_arg_mutation(body, draw)
    return tag + b" " + body


@st.composite
def imap_stream(draw: st.DrawFn) -> bytes:
    parts = []
    for i in range(draw(st.integers(0, 8))):
        parts.append(draw(imap_command(b"t%d" % i)) + draw(st.sampled_from([b"\r\n", b"\n"])))
        if draw(st.integers(0, 6)) == 0:  # a literal announcement, honest or not
            size = draw(st.sampled_from([0, 1, 5, 40, 10**6, 10**20]))
            parts.append(b"x {%d%s}\r\n" % (size, draw(st.sampled_from([b"", b"+"]))))
            parts.append(draw(st.binary(max_size=50)))
    return b"".join(parts)


imap_bytes = st.one_of(imap_stream(), st.binary(max_size=600), _nasty_bytes(80))


def check_imap_parser(data: bytes) -> None:
    cmd = imap_parse(data)
    if isinstance(cmd, ImapInvalid):
        assert isinstance(cmd.tag, str) and cmd.tag
        assert isinstance(cmd.reason, str)


def _imap_core_commands(chunks: Iterator[bytes], max_line: int) -> tuple[list[object], bytes]:
    core = CommandFramer(max_line=max_line, max_append=1000)
    seen: list[object] = []
    sent = b""
    for chunk in chunks:
        core.receive_data(chunk)
        while (cmd := core.next_command()) is not IMAP_NEED_DATA:
            seen.append(cmd)
        sent += core.data_to_send()
    return seen, sent


def check_imap_core(data: bytes, sizes: list[int]) -> None:
    """Any bytes become commands; in pieces or whole, the same commands and continuations."""
    max_line = 64 * 1024  # above any generated line: the cut points cannot change the outcome
    whole = _imap_core_commands(iter([data]), max_line)
    pieces = _imap_core_commands(_chunks(data, sizes), max_line)
    assert whole == pieces
    small = _imap_core_commands(_chunks(data, sizes), 40)  # tiny limit: never an exception
    for cmd in small[0]:
        assert cmd is not None


# -- IMAP session ------------------------------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"\{\d+\+?\}\Z")


@st.composite
def imap_session_script(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """(tag, command line) pairs; a login and SELECT first most of the time."""
    script: list[tuple[bytes, bytes]] = []
    prefix = draw(
        st.sampled_from([[], [b"LOGIN ann secret"], [b"LOGIN ann secret", b"SELECT INBOX"]])
    )
    bodies = list(prefix)
    for _ in range(draw(st.integers(0, 14))):
        body = draw(imap_command(b""))[1:]
        bodies.append(body)
    for i, body in enumerate(bodies):
        body = body.replace(b"\n", b" ").replace(b"\r", b" ")
        body = body.replace(b"{5+} hello", b"{5+}\r\nhello").replace(b"{3+} abc", b"{3+}\r\nabc")
        if _LITERAL_AT_END.search(body):
            body += b"x"  # a dangling literal would swallow the next command
        tag = b"T%04dQ" % i
        script.append((tag, tag + b" " + body))
    return script


_TAGGED = re.compile(rb"^(T\d{4}Q) (OK|NO|BAD)\b", re.M)


async def _run_imap_session(script: list[tuple[bytes, bytes]]) -> None:
    ctx = make_context()
    await _seeded(ctx)
    info = ctx.sessions.open("imap", "127.0.0.1", 143)
    sink = _Sink()
    session = ImapSession(ctx, ImapServerState(), info, sink, tls=False, starttls=False)
    sink.write(session.greeting())
    sent: list[bytes] = []
    try:
        for tag, line in script:
            if session.core.closed:
                break
            sent.append(tag)
            session.core.receive_data(line + b"\r\n")
            await _imap_pump(session)
    finally:
        session.close()
    out = b"".join(sink.data)
    assert out.startswith(b"* OK ")
    tagged = [m.group(1) for m in _TAGGED.finditer(out)]
    assert set(tagged) <= set(sent), (tagged, sent)
    for tag in sent:
        count = tagged.count(tag)
        # A session that ends with BYE (its folder vanished) may leave its last command unanswered.
        closed_early = session.core.closed and tag == sent[-1]
        assert count == 1 or (closed_early and count == 0), (tag, count, out[-2000:])


async def _imap_pump(session: ImapSession) -> None:
    """The adapter's loop until more input is needed (SASL and IDLE answered for it)."""
    core = session.core
    while True:
        await run_ready(session)
        if core.closed or core.mode is ReadMode.COMMAND:
            return
        core.receive_data(b"*\r\n" if core.mode is ReadMode.SASL else b"DONE\r\n")


class _Sink:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.data.append(data)

    async def drain(self) -> None:
        return None


def check_imap_session(script: list[tuple[bytes, bytes]]) -> None:
    with no_internal_errors():
        try:
            asyncio.run(_run_imap_session(script))
        except PeerError:
            pass  # the adapter closes the connection: a clean end


# -- MIME --------------------------------------------------------------------------------------

_TYPES = [
    b"text/plain",
    b"text/html; charset=utf-8",
    b"multipart/mixed",
    b"multipart/alternative",
    b"multipart/digest",
    b"message/rfc822",
    b"message/global",
    b"application/octet-stream",
    b'TEXT/PLAIN; charset="iso-8859-1"; format=flowed',
    b"",
    b";;;",
    b"multipart",
    b"/",
]
_ENCODINGS = [b"7bit", b"8bit", b"binary", b"base64", b"quoted-printable", b"x-uuencode", b"BASE64"]
_HEADERS = [
    b"From",
    b"To",
    b"Cc",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"In-Reply-To",
    b"Reply-To",
    b"Content-Disposition",
    b"Content-Language",
    b"Content-ID",
    b"Content-Description",
    b"Content-MD5",
    b"Content-Location",
]
_VALUES = [
    b"Ann <ann@example.com>",
    b'"A, \\"quoted\\"" <a@b>, group: x@y, z@w;',
    b"=?utf-8?B?w6k=?= =?iso-8859-1?Q?=E9?=",
    b"=?bogus?X?@@@?=",
    b"<a@b> (comment (nested)",
    b"Mon, 7 Feb 1994 21:52:25 -0800",
    b"attachment; filename*=utf-8''%E9t%C3%A9.txt; filename*0=a; filename*1=b",
    b"@@@<<<>>>",
    b"",
]


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> bytes:
    headers = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(_HEADERS))
        value = draw(st.one_of(st.sampled_from(_VALUES), _nasty_bytes(10)))
        fold = draw(st.sampled_from([b"", b"\r\n\t", b"\r\n "]))
        headers.append(name + b": " + fold + value + b"\r\n")
    kind = draw(st.sampled_from(_TYPES))
    boundary = draw(st.sampled_from([b"b%d" % depth, b"same", b'"q b"', b"", b"x" * 80]))
    multipart = kind.startswith(b"multipart") and depth < 6
    if multipart:
        kind += b"; boundary=" + boundary
    if kind or draw(st.booleans()):
        headers.append(b"Content-Type: " + kind + b"\r\n")
    if draw(st.booleans()):
        headers.append(b"Content-Transfer-Encoding: " + draw(st.sampled_from(_ENCODINGS)) + b"\r\n")
    head = b"".join(headers) + draw(st.sampled_from([b"\r\n", b"\n", b""]))
    if multipart:
        delim = boundary.strip(b'"')
        kids = draw(st.lists(mime_part(depth + 1), max_size=3))
        body = b"preamble\r\n"
        for kid in kids:
            body += b"--" + delim + b"\r\n" + kid + b"\r\n"
        if draw(st.booleans()):
            body += b"--" + delim + b"--\r\n"  # sometimes never closed
        return head + body + draw(st.binary(max_size=10))
    if kind.startswith(b"message/") and depth < 6 and draw(st.booleans()):
        return head + draw(mime_part(depth + 1))
    body = draw(
        st.one_of(st.binary(max_size=60), st.sampled_from([b"SGVsbG8=\r\n", b"a=3D=\r\nb"]))
    )
    return head + body


def _corpus() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]


@st.composite
def mutated_corpus(draw: st.DrawFn) -> bytes:
    corpus = _corpus()
    if not corpus:
        return b""
    data = draw(st.sampled_from(corpus))
    return _damage(data, draw(_CUTS))


def deep_message(depth: int, kind: str) -> bytes:
    """A message nested ``depth`` levels deep: multiparts, rfc822 envelopes, or both."""
    if kind == "rfc822":
        return b"Content-Type: message/rfc822\r\n\r\n" * depth + b"Subject: deep\r\n\r\nx\r\n"
    head = b""
    tail = b""
    for level in range(depth):
        b = b"b%d" % level
        head += b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
        tail = b"\r\n--" + b + b"--\r\n" + tail
    return head + b"Content-Type: text/plain\r\n\r\nleaf" + tail


deep_messages = st.builds(
    deep_message, st.integers(1, 2000), st.sampled_from(["multipart", "rfc822"])
)
mime_bytes = st.one_of(mime_part(), mutated_corpus(), st.binary(max_size=400), deep_messages)

_SECTION_TEXT = ["", "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"]
section_specs = st.builds(
    lambda part, text, fields: SectionSpec(
        tuple(part),
        text if part or text != "MIME" else "",
        tuple(fields),
    ),
    st.lists(st.integers(0, 4), max_size=4),
    st.sampled_from(_SECTION_TEXT),
    st.lists(st.sampled_from(["FROM", "SUBJECT", "CONTENT-TYPE", "X"]), max_size=3),
)

_TOKEN = re.compile(rb'\(|\)|NIL|\d+|"(?:[^"\\\r\n]|\\["\\])*"|\{(\d+)\}\r\n| ')


def assert_imap_list(data: bytes) -> None:
    """``data`` is one well-formed parenthesized IMAP list (strings, literals, NIL, numbers)."""
    pos, depth = 0, 0
    while pos < len(data):
        m = _TOKEN.match(data, pos)
        assert m is not None, f"bad token at {pos}: {data[pos : pos + 40]!r} in {data[:200]!r}"
        pos = m.end()
        if m.group(0) == b"(":
            depth += 1
        elif m.group(0) == b")":
            depth -= 1
            assert depth >= 0, data[:200]
            if depth == 0:
                assert pos == len(data), f"text after the list: {data[pos : pos + 40]!r}"
        elif m.group(1) is not None:
            pos += int(m.group(1))
            assert pos <= len(data), "literal runs past the end"
        assert depth > 0 or pos == len(data), data[:200]
    assert depth == 0 and data.startswith(b"("), data[:200]


def _check_offsets(part: MimePart, size: int) -> None:
    for p in part.walk():
        assert 0 <= p.start <= p.body_start <= p.end <= size, (p.start, p.body_start, p.end)
        for f in p.fields:
            assert p.start <= f.start <= f.end <= p.body_start


def check_mime(wire: bytes, specs: list[SectionSpec]) -> None:
    root = parse_message(wire)
    _check_offsets(root, len(wire))
    for extended in (False, True):
        for rev2 in (False, True):
            assert_imap_list(body_structure(root, extended=extended, rev2=rev2))
    assert_imap_list(envelope(root))
    assert section_bytes(root, wire, SectionSpec()) == wire
    for spec in specs:
        got = section_bytes(root, wire, spec)
        assert got is None or isinstance(got, bytes)
        try:
            binary_section(root, wire, spec.part)
        except UnknownTransferEncoding:
            pass


# -- names and SMTP ingress --------------------------------------------------------------------

name_text = st.one_of(
    st.sampled_from(
        [
            "..",
            "../bob",
            "~bob",
            "#shared/bob",
            "/etc/passwd",
            "a/../../b",
            "&AC4ALg-",
            "&AC8-etc",
            "&AFwALgAu-",
            "INBOX/..",
            "a\x00b",
            "x" * 300,
            "a/" * 40,
            ".hidden",
            "%2e%2e",
            "\u202e",
        ]
    ),
    st.text(max_size=30),
    st.lists(st.sampled_from(["..", ".", "/", "&", "-", "AC4", "~", "\\", "\x00", "a"])).map(
        "".join
    ),
)


def check_folder_name_mapping(raw: str, wire: bytes) -> None:
    """A folder name the store accepts maps to one ``.name`` directory inside the user root."""
    root = Path("/srv/mail/ann")
    candidates = [raw]
    try:
        candidates.append(decode_name(wire, utf8=False))
    except BadMailboxName:
        pass
    for name in candidates:
        try:
            checked = check_folder_name(name)
            path = folder_dir(root, checked)
        except InvalidName:
            continue
        if checked == "INBOX":
            assert path == root
            continue
        assert path.parent == root, (name, path)
        assert path.name.startswith(".") and path.name not in (".", ".."), (name, path)
        assert "/" not in path.name and "\x00" not in path.name, (name, path)
        assert ".." not in path.name[1:].split("."), (name, path)


def check_user_name_safe(name: str) -> None:
    try:
        check_user_name(name)
    except InvalidName:
        return
    path = Path("/srv/mail") / name
    assert path.parent == Path("/srv/mail") and name not in (".", ".."), name


address_text = st.one_of(
    st.builds(
        lambda a, b: f"{a}@{b}", name_text, st.sampled_from(["localhost", "evil.example", ""])
    ),
    name_text,
    st.sampled_from(["@", "a@b@c", "<>", "ann@localhost", "ANN@LOCALHOST", "ann@[127.0.0.1]"]),
)


async def _recipient(address: str, dev: bool) -> tuple[str | None, str]:
    from mailsrv.smtp.handler import IngressHandler

    ctx = make_context()
    ctx.config = dataclasses.replace(ctx.config, dev=dev)
    await ctx.store.ensure_user("ann")
    return await IngressHandler(ctx).recipient_user(address)


def check_smtp_recipient(address: str, dev: bool) -> None:
    with no_internal_errors():
        user, reply = asyncio.run(_recipient(address, dev))
    if user is None:
        assert reply[:1] == "5" and reply[3:4] == " ", reply
        return
    assert reply.startswith("250 "), reply
    assert check_user_name(user) == user
    domain = address.rpartition("@")[2].lower() if "@" in address else ""
    if not dev:
        assert domain in ("", "localhost", "[127.0.0.1]", "127.0.0.1"), address


# -- the registry ------------------------------------------------------------------------------

sizes = st.lists(st.integers(1, 7), max_size=60)


@dataclass(frozen=True)
class Target:
    name: str
    strategies: tuple[st.SearchStrategy[Any], ...]
    check: Callable[..., None]


TARGETS = [
    Target("pop3-core", (pop3_stream, sizes), check_pop3_core),
    Target("pop3-session", (pop3_session_script(),), check_pop3_session),
    Target("imap-parser", (imap_bytes,), check_imap_parser),
    Target("imap-core", (imap_bytes, sizes), check_imap_core),
    Target("imap-session", (imap_session_script(),), check_imap_session),
    Target("mime", (mime_bytes, st.lists(section_specs, max_size=4)), check_mime),
    Target("folder-names", (name_text, _nasty_bytes(20)), check_folder_name_mapping),
    Target("user-names", (name_text,), check_user_name_safe),
    Target("smtp-rcpt", (address_text, st.booleans()), check_smtp_recipient),
]
BY_NAME = {t.name: t for t in TARGETS}


def property_test(target: Target, examples: int, **extra: Any) -> Callable[[], None]:
    """The target as a hypothesis test function (what the unit tests and the campaign call)."""

    @settings(
        max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), **extra
    )
    @given(st.tuples(*target.strategies))
    def test(args: tuple[Any, ...]) -> None:
        target.check(*args)

    return test


# -- the campaign ------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    tried: int = 0
    seconds: float = 0.0
    failure: str | None = None


def _counting(target: Target, outcome: Outcome) -> Target:
    def check(*args: Any) -> None:
        outcome.tried += 1
        target.check(*args)

    return dataclasses.replace(target, check=check)


def run_campaign(
    targets: list[Target], *, seconds: float | None, examples: int | None
) -> list[Outcome]:
    """Run each target for its share of ``seconds`` (batches) or for ``examples`` inputs."""
    outcomes = []
    batch = 500
    for target in targets:
        outcome = Outcome(target.name)
        counted = _counting(target, outcome)
        start = time.monotonic()
        budget = None if seconds is None else seconds / len(targets)
        print(f"{target.name}: ", end="", flush=True)
        while True:
            n = examples if examples is not None else batch
            try:
                property_test(counted, n, database=None)()
            except Exception as exc:  # hypothesis re-raises the shrunk failure
                outcome.failure = "".join(traceback.format_exception_only(exc)).strip()
                break
            if budget is None or time.monotonic() - start >= budget:
                break
        outcome.seconds = time.monotonic() - start
        status = "FAILED" if outcome.failure else "ok"
        print(f"{outcome.tried} inputs in {outcome.seconds:.0f}s, {status}", flush=True)
        if outcome.failure:
            print("    " + outcome.failure.replace("\n", "\n    ")[:3000], flush=True)
        outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n")[0]
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--minutes", type=float, help="total time, shared by the targets")
    group.add_argument("--examples", type=int, help="inputs per target")
    parser.add_argument("--target", action="append", choices=sorted(BY_NAME), help="repeatable")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args(argv)
    if args.list:
        for t in TARGETS:
            print(t.name)
        return 0
    targets = [BY_NAME[n] for n in args.target] if args.target else TARGETS
    seconds = None
    if args.examples is None:
        seconds = 60.0 * (args.minutes if args.minutes is not None else 5.0)
    logging.basicConfig(level=logging.CRITICAL)  # internal errors are reported as failures
    outcomes = run_campaign(targets, seconds=seconds, examples=args.examples)
    total = sum(o.tried for o in outcomes)
    failed = [o for o in outcomes if o.failure]
    print(f"total: {total} inputs over {len(outcomes)} targets; {len(failed)} target(s) failed")
    for o in failed:
        print(f"  {o.name}: {o.failure.splitlines()[0] if o.failure else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
