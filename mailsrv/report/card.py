"""The report card of one server: an observer per session, fed from the tracer.

``ReportCard.record`` is a tracer sink (``MailServer`` installs it with a function that says
whether a session is on TLS now). It gives each session's lines to that protocol's observer and
keeps the habits noted, per session and, once a session has logged in, per user. Sessions are
kept after they close, the oldest forgotten past ``MAX_SESSIONS``. The loop records; the
fixture reads from its own thread, so both take the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from mailsrv.report.findings import Finding, merge
from mailsrv.report.imap_habits import ImapObserver
from mailsrv.report.mail_habits import Pop3Observer, SmtpObserver
from mailsrv.report.observer import HabitObserver, UserMemory
from mailsrv.trace import TraceLine

#: Sessions whose findings are kept (live and closed): the newest ones.
MAX_SESSIONS = 2_000
#: Users whose earlier downloads are remembered (for refetch-all): the most recent ones.
MAX_USERS = 1_000

_OBSERVERS: dict[str, Callable[[str], HabitObserver]] = {
    "imap": ImapObserver,
    "pop3": Pop3Observer,
    "smtp": SmtpObserver,
}
#: The tracer's event lines that end a session.
_CLOSE_EVENTS = frozenset({"close", "closed"})


class ReportCard:
    def __init__(self, tls_of: Callable[[str], bool]) -> None:
        self._tls_of = tls_of
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, HabitObserver] = OrderedDict()
        self._memory: OrderedDict[str, UserMemory] = OrderedDict()

    def record(self, line: TraceLine) -> None:
        """Feed one transcript line to its session's observer."""
        make = _OBSERVERS.get(line.protocol)
        if make is None:
            return
        with self._lock:
            observer = self._sessions.get(line.session)
            if observer is None:
                observer = self._sessions[line.session] = make(line.session)
                if len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            if line.user is not None and observer.user is None:
                observer.user = line.user
                observer.memory = self._remember(line.user)
            if line.direction == "C":
                observer.client(line.text, self._tls_of(line.session))
            elif line.direction == "S":
                observer.server(line.text)
            elif line.text in _CLOSE_EVENTS:
                observer.closed()

    def _remember(self, user: str) -> UserMemory:
        memory = self._memory.pop(user, None) or UserMemory()
        self._memory[user] = memory
        if len(self._memory) > MAX_USERS:
            self._memory.popitem(last=False)
        return memory

    def for_session(self, session: str) -> list[Finding] | None:
        """The session's findings; None when the card never saw it (or forgot it)."""
        with self._lock:
            observer = self._sessions.get(session)
            return None if observer is None else merge(list(observer.noted.values()))

    def for_sessions(self, sessions: set[str]) -> list[Finding]:
        """The findings of these sessions together, one per habit (a device's card)."""
        with self._lock:
            noted = [
                n for sid, o in self._sessions.items() if sid in sessions for n in o.noted.values()
            ]
        return merge(noted)

    def for_user(self, user: str) -> list[Finding]:
        """The findings of every kept session of ``user``, one per habit."""
        with self._lock:
            noted = [n for o in self._sessions.values() if o.user == user for n in o.noted.values()]
        return merge(noted)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()
            self._memory.clear()
