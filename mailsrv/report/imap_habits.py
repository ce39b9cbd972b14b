"""IMAP habits, noticed from a session's command stream.

- ``poll-instead-of-idle``: IDLE is in a CAPABILITY the server sent, the client never IDLEs,
  and it repeats NOOP/CHECK, or STATUS, SELECT or EXAMINE of one mailbox, ``POLLS`` times;
- ``no-uid-commands``: FETCH, STORE, COPY or MOVE without ``UID``;
- ``fetch-sets-seen``: BODY[...], BINARY[...] or RFC822 (not their .PEEK forms) in a mailbox
  selected read-write (SELECT, not EXAMINE);
- ``refetch-all``: a whole-body fetch of the same set in the same mailbox that this user's
  sessions fetched before (a client that remembers UIDs asks for ``UIDNEXT:*`` instead);
- ``cleartext-login``: LOGIN, or AUTHENTICATE PLAIN/LOGIN, without TLS;
- ``no-logout``: a logged-in session that closes without LOGOUT.

Only commands the server completed with OK change what is selected (tags are matched).
"""

from __future__ import annotations

import re

from mailsrv.report.observer import HabitObserver

#: The same poll this many times, with IDLE on offer, is polling.
POLLS = 3

_IDLE_OFFERED = re.compile(r"CAPABILITY\b[^\]\r\n]*\bIDLE\b", re.IGNORECASE)
_SETS_SEEN = re.compile(r"\b(?:BODY|BINARY)\[|\bRFC822\b(?![.\w])", re.IGNORECASE)
_WHOLE_BODY = re.compile(r"\b(?:BODY|BINARY)(?:\.PEEK)?\[\]|\bRFC822\b(?![.\w])", re.IGNORECASE)
_SEQUENCE_COMMANDS = frozenset({"FETCH", "STORE", "COPY", "MOVE"})
_CLEARTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


def _mailbox(argument: str) -> str:
    """The first argument, unquoted (INBOX is case-insensitive, RFC 9051 §5.1)."""
    name = argument.strip()
    name = name[1:].split('"', 1)[0] if name.startswith('"') else name.split(" ", 1)[0]
    return "INBOX" if name.upper() == "INBOX" else name


class ImapObserver(HabitObserver):
    def __init__(self, session: str) -> None:
        super().__init__(session)
        self.idle_offered = False
        self.idled = False
        self.logged_out = False
        self.selected: str | None = None
        self.read_write = False
        self.polls: dict[tuple[str, str], list[str]] = {}
        self.pending: dict[str, tuple[str, str]] = {}  # tag -> (verb, mailbox)

    def client(self, text: str, tls: bool) -> None:
        tag, _, rest = text.partition(" ")
        words = rest.split(" ", 2)
        uid = words[0].upper() == "UID"
        if uid:
            words = words[1:]
        verb = words[0].upper() if words else ""
        argument = " ".join(words[1:])
        evidence = self.line("C", text)
        if verb == "IDLE":
            self.idled = True
        elif verb == "LOGOUT":
            self.logged_out = True
        elif verb in ("LOGIN", "AUTHENTICATE") and not tls:
            mechanism = argument.split(" ", 1)[0].upper()
            if verb == "LOGIN" or mechanism in _CLEARTEXT_MECHANISMS:
                self.note("cleartext-login", evidence)
        elif verb in ("SELECT", "EXAMINE"):
            self.pending[tag] = (verb, _mailbox(argument))
        self._poll(verb, argument, evidence)
        if verb in _SEQUENCE_COMMANDS and not uid:
            self.note("no-uid-commands", evidence)
        if verb == "FETCH" and self.selected is not None:
            self._fetch(uid, argument, evidence)

    def _poll(self, verb: str, argument: str, evidence: str) -> None:
        if verb in ("NOOP", "CHECK"):
            key = ("NOOP", "")
        elif verb in ("STATUS", "SELECT", "EXAMINE"):
            key = (verb, _mailbox(argument))
        else:
            return
        lines = self.polls.setdefault(key, [])
        lines.append(evidence)
        del lines[:-POLLS]  # a session that polls for days keeps only the last few
        if len(lines) == POLLS and self.idle_offered and not self.idled:
            self.note("poll-instead-of-idle", *lines)

    def _fetch(self, uid: bool, argument: str, evidence: str) -> None:
        sequence, _, items = argument.partition(" ")
        if self.read_write and _SETS_SEEN.search(items):
            self.note("fetch-sets-seen", evidence)
        whole = _WHOLE_BODY.search(items)
        if whole is None or self.memory is None or self.selected is None:
            return
        what = f"{'UID ' if uid else ''}{sequence} {whole.group(0).upper()}"
        earlier = self.memory.fetched_before(("imap", self.selected, what), evidence)
        if earlier is not None:
            self.note("refetch-all", earlier, evidence)

    def server(self, text: str) -> None:
        if not self.idle_offered and _IDLE_OFFERED.search(text):
            self.idle_offered = True
        if not self.pending:
            return
        for line in text.split("\n"):
            tag, _, status = line.partition(" ")
            done = self.pending.pop(tag, None)
            if done is None:
                continue
            if status.upper().startswith("OK"):
                self.selected, self.read_write = done[1], done[0] == "SELECT"
            else:  # a failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2)
                self.selected, self.read_write = None, False

    def closed(self) -> None:
        if self.user is not None and not self.logged_out:
            self.note("no-logout", self.line("*", "closed without LOGOUT"))
