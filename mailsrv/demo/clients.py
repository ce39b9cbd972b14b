"""The demo's three devices: a laptop and a phone on IMAP, a desktop on POP3.

The laptop and the desktop are Python's own ``imaplib`` and ``poplib`` (run in a thread, as any
script would use them); the phone is a small asyncio IMAP client that sits in IDLE and collects
what the server pushes, so the demo can show the push arriving.
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import re
from dataclasses import dataclass, field

#: How long the demo waits for a pushed update before saying it did not come.
PUSH_WAIT = 5.0


@dataclass
class Phone:
    """An IMAP client in IDLE on INBOX; ``pushed`` holds every untagged line it was sent."""

    host: str
    port: int
    user: str
    password: str
    pushed: list[str] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def _streams(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            raise ConnectionError("not connected")
        return self._reader, self._writer

    async def _command(self, tag: str, line: str) -> list[str]:
        reader, writer = self._streams()
        writer.write(f"{tag} {line}\r\n".encode())
        await writer.drain()
        out: list[str] = []
        while True:
            raw = await reader.readline()
            if not raw:
                raise ConnectionError("server closed the connection")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            out.append(text)
            if text.startswith(tag + " "):
                return out

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        await self._reader.readline()
        await self._command("p1", f'LOGIN "{self.user}" "{self.password}"')
        await self._command("p2", "SELECT INBOX")
        await self.idle()

    async def idle(self) -> None:
        reader, writer = self._streams()
        writer.write(b"p3 IDLE\r\n")
        await writer.drain()
        await reader.readline()  # "+ idling"
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        reader, _ = self._streams()
        while True:
            raw = await reader.readline()
            if not raw:
                return
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if text.startswith("p3 "):
                return
            self.pushed.append(text)
            self._changed.set()

    def mark(self) -> int:
        """A position in ``pushed``: ``wait_for(..., since=mark)`` looks only at later lines."""
        return len(self.pushed)

    def lines_since(self, since: int, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [line for line in self.pushed[since:] if regex.search(line)]

    async def wait_for(self, pattern: str, count: int = 1, since: int = 0) -> bool:
        """Wait until ``count`` pushed lines after ``since`` match ``pattern``; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PUSH_WAIT
        while len(self.lines_since(since, pattern)) < count:
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    async def close(self) -> None:
        if self._writer is None:
            return
        self._writer.write(b"DONE\r\n")
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, PUSH_WAIT)
            except TimeoutError:
                self._task.cancel()
        try:
            await self._command("p4", "LOGOUT")
        except ConnectionError:
            pass
        self._writer.close()
        await self._writer.wait_closed()
        self._writer = None


class Laptop:
    """``imaplib`` as a desktop mail program would use it."""

    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        self.imap = imaplib.IMAP4(host, port)
        self.imap.login(user, password)

    def select(self, folder: str = "INBOX") -> int:
        _, data = self.imap.select(folder)
        return int(data[0] or 0)

    def read(self, uid: int) -> bytes:
        """Open a message, as a reader does: fetching the body sets \\Seen on the server."""
        _, data = self.imap.uid("FETCH", str(uid), "(BODY[])")
        return _literal(data)

    def fetch(self, uid: int, items: str) -> bytes:
        _, data = self.imap.uid("FETCH", str(uid), items)
        return (
            _literal(data)
            if any(isinstance(d, tuple) for d in data)
            else b" ".join(d for d in data if isinstance(d, bytes))
        )

    def search(self, *criteria: str) -> list[int]:
        _, data = self.imap.uid("SEARCH", *criteria)
        return [int(x) for x in (data[0] or b"").split()]

    def create(self, folder: str) -> None:
        self.imap.create(folder)

    def move(self, uid: int, folder: str) -> None:
        self.imap.uid("MOVE", str(uid), folder)

    def uids(self) -> list[int]:
        return self.search("ALL")

    def logout(self) -> None:
        self.imap.logout()


def _literal(data: list[object]) -> bytes:
    for item in data:
        if isinstance(item, tuple):
            return bytes(item[1])
    return b""


class Desktop:
    """``poplib`` as a download-and-delete (or leave-on-server) client uses it."""

    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        self.pop = poplib.POP3(host, port)
        self.pop.user(user)
        self.pop.pass_(password)

    def stat(self) -> tuple[int, int]:
        count, size = self.pop.stat()
        return count, size

    def uidls(self) -> dict[int, str]:
        _, lines, _ = self.pop.uidl()
        out = {}
        for line in lines:
            num, uidl = line.decode().split()
            out[int(num)] = uidl
        return out

    def retr(self, num: int) -> bytes:
        _, lines, _ = self.pop.retr(num)
        return b"\r\n".join(lines)

    def dele(self, num: int) -> None:
        self.pop.dele(num)

    def quit(self) -> None:
        self.pop.quit()
