"""One POP3 command line to one command value (RFC 1939, RFC 2449, RFC 2595, RFC 5034).

Keywords are case-insensitive; arguments are separated by spaces. ``PASS`` keeps everything
after the first space, spaces included (RFC 1939 §7 allows spaces in the password). Anything
unusable becomes an ``InvalidCommand`` whose reason is shown to the client, never an exception.
The SASL helpers decode AUTH responses (RFC 4648 base64, RFC 4616 PLAIN).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mailsrv.pop3.commands import (
    Apop,
    Auth,
    Capa,
    Command,
    Dele,
    InvalidCommand,
    List,
    Noop,
    Pass,
    Quit,
    Retr,
    Rset,
    Stat,
    Stls,
    Top,
    Uidl,
    User,
)

#: Message numbers and line counts: ten digits is more than any mailbox or message holds.
_NUMBER = re.compile(r"[0-9]{1,10}\Z")
_DIGEST = re.compile(r"[0-9a-fA-F]{32}\Z")
#: Longest verb shown back in "unknown command" replies.
_MAX_ECHO = 16

Parsed = Command | InvalidCommand


def _number(word: str) -> int | None:
    return int(word) if _NUMBER.match(word) else None


def _no_args(make: Callable[[], Command]) -> Callable[[str, str], Parsed]:
    def parse(verb: str, rest: str) -> Parsed:
        if rest.strip(" "):
            return InvalidCommand(f"{verb} takes no arguments", verb)
        return make()

    return parse


def _one_msg(make: Callable[[int], Command]) -> Callable[[str, str], Parsed]:
    def parse(verb: str, rest: str) -> Parsed:
        args = rest.split()
        if len(args) != 1:
            return InvalidCommand(f"{verb} needs a message number", verb)
        n = _number(args[0])
        if n is None:
            return InvalidCommand(f"invalid message number: {args[0][:_MAX_ECHO]}", verb)
        return make(n)

    return parse


def _optional_msg(make: Callable[[int | None], Command]) -> Callable[[str, str], Parsed]:
    def parse(verb: str, rest: str) -> Parsed:
        args = rest.split()
        if not args:
            return make(None)
        if len(args) > 1:
            return InvalidCommand(f"{verb} takes at most one message number", verb)
        n = _number(args[0])
        if n is None:
            return InvalidCommand(f"invalid message number: {args[0][:_MAX_ECHO]}", verb)
        return make(n)

    return parse


def _top(verb: str, rest: str) -> Parsed:
    args = rest.split()
    if len(args) != 2:
        return InvalidCommand("TOP needs a message number and a line count", verb)
    n, lines = _number(args[0]), _number(args[1])
    if n is None:
        return InvalidCommand(f"invalid message number: {args[0][:_MAX_ECHO]}", verb)
    if lines is None:
        return InvalidCommand(f"invalid line count: {args[1][:_MAX_ECHO]}", verb)
    return Top(n, lines)


def _user(verb: str, rest: str) -> Parsed:
    name = rest.strip(" ")
    if not name:
        return InvalidCommand("USER needs a user name", verb)
    return User(name)


def _pass(verb: str, rest: str) -> Parsed:
    return Pass(rest)


def _apop(verb: str, rest: str) -> Parsed:
    args = rest.split()
    if len(args) != 2 or not _DIGEST.match(args[1]):
        return InvalidCommand("APOP needs a user name and a 32-digit hex MD5 digest", verb)
    return Apop(args[0], args[1].lower())


def _auth(verb: str, rest: str) -> Parsed:
    args = rest.split()
    if not args:
        return Auth()
    if len(args) > 2:
        return InvalidCommand("AUTH takes a mechanism and at most one initial response", verb)
    return Auth(args[0].upper(), args[1] if len(args) == 2 else None)


_PARSERS: dict[str, Callable[[str, str], Parsed]] = {
    "USER": _user,
    "PASS": _pass,
    "APOP": _apop,
    "AUTH": _auth,
    "CAPA": _no_args(Capa),
    "STLS": _no_args(Stls),
    "QUIT": _no_args(Quit),
    "STAT": _no_args(Stat),
    "NOOP": _no_args(Noop),
    "RSET": _no_args(Rset),
    "LIST": _optional_msg(List),
    "UIDL": _optional_msg(Uidl),
    "RETR": _one_msg(Retr),
    "DELE": _one_msg(Dele),
    "TOP": _top,
}


def parse_command(line: bytes) -> Parsed:
    """Parse one command line, given without its line end."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return InvalidCommand("command line is not valid UTF-8")
    if "\0" in text:
        return InvalidCommand("NUL in command line")
    verb, sep, rest = text.lstrip(" ").partition(" ")
    if not verb:
        return InvalidCommand("empty command line")
    key = verb.upper()
    parse = _PARSERS.get(key)
    if parse is None:
        return InvalidCommand(f"unknown command: {verb[:_MAX_ECHO]}")
    if key == "PASS" and not sep:
        return InvalidCommand("PASS needs a password", key)
    return parse(key, rest)
