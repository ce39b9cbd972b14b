"""What every protocol's habit observer shares: the session it watches, the habits noted so far,
and what one user's sessions remember of each other (``UserMemory``).

An observer is sans-I/O: it is fed the transcript's text (the client's lines with ``tls`` saying
whether the connection is encrypted at that moment, the server's responses, the close), never
touches a socket or the store, and only notes habits.
"""

from __future__ import annotations

from collections import OrderedDict

from mailsrv.report.findings import Noted

#: Body downloads remembered per user (oldest forgotten first): plenty for a test or a demo.
MAX_REMEMBERED_FETCHES = 10_000


class UserMemory:
    """What one user's earlier sessions did that a later one may repeat."""

    def __init__(self) -> None:
        #: (protocol, mailbox, what was fetched) -> the line that first fetched it.
        self.fetched: OrderedDict[tuple[str, str, str], str] = OrderedDict()

    def fetched_before(self, key: tuple[str, str, str], line: str) -> str | None:
        """The earlier line that fetched ``key``, if any; remember this one otherwise."""
        earlier = self.fetched.get(key)
        if earlier is not None:
            return earlier
        self.fetched[key] = line
        if len(self.fetched) > MAX_REMEMBERED_FETCHES:
            self.fetched.popitem(last=False)
        return None


class HabitObserver:
    """Base of the protocol observers: notes habits for one session."""

    def __init__(self, session: str) -> None:
        self.session = session
        self.noted: dict[str, Noted] = {}
        self.user: str | None = None
        #: Set once the session logs in (``UserMemory`` is per user).
        self.memory: UserMemory | None = None

    def note(self, code: str, *lines: str) -> None:
        self.noted.setdefault(code, Noted(code)).add(list(lines))

    def line(self, direction: str, text: str) -> str:
        """A transcript line as evidence: ``imap-3 C: a1 FETCH 1:* (BODY[])``."""
        return f"{self.session} {direction}: {text}"

    def client(self, text: str, tls: bool) -> None:
        """A line (or command) the client sent."""

    def server(self, text: str) -> None:
        """A response the server sent (several lines joined by LF)."""

    def closed(self) -> None:
        """The connection is gone."""
