"""What each load-generator process does in each scenario (see ``loadgen.WorkerCtx``).

Every function connects and logs in before the first ``ctx.phase()`` unless logging in is part
of what is measured, and returns plain data (counts, bytes, times) for the parent to combine.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, cast

from benchmarks.clients import ImapClient, Pop3Client, SmtpClient, parse_search
from benchmarks.loadgen import WorkerCtx
from benchmarks.seed import PASSWORD

HOST = "127.0.0.1"
META_ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
#: Seconds one IDLE connection may take to log in, select and start idling.
SETUP_TIMEOUT = 60.0


async def pop3_drain(ctx: WorkerCtx, port: int, users: list[str]) -> dict[str, Any]:
    """Per user: USER/PASS, LIST, RETR every message, QUIT (no DELE, so it can run again)."""
    clients = [await Pop3Client.connect(HOST, port) for _ in users]
    await ctx.phase()

    async def drain(client: Pop3Client, user: str) -> tuple[int, int]:
        await client.login(user, PASSWORD)
        listing = await client.listing()
        for num, _size in listing:
            await client.multiline(f"RETR {num}")
        await client.quit()
        return len(listing), sum(size for _, size in listing)

    done = await asyncio.gather(*(drain(c, u) for c, u in zip(clients, users, strict=True)))
    await ctx.phase()
    return {"messages": sum(m for m, _ in done), "bytes": sum(b for _, b in done)}


async def _bodies(client: ImapClient, uids: list[int]) -> int:
    """Every body, one ``UID FETCH BODY.PEEK[]`` at a time; the octets read."""
    total = 0
    for uid in uids:
        _, octets = await client.command(f"UID FETCH {uid} BODY.PEEK[]")
        total += octets
    return total


async def imap_sync(ctx: WorkerCtx, port: int, users: list[str]) -> dict[str, Any]:
    """SELECT + metadata FETCH (cold), metadata FETCH again (warm), then every body one by one."""
    clients = []
    for user in users:
        client = await ImapClient.connect(HOST, port)
        await client.login(user, PASSWORD)
        clients.append(client)
    await ctx.phase()

    async def metadata(client: ImapClient, select: bool) -> tuple[list[int], int]:
        if select:
            await client.command("SELECT INBOX")
        lines, _ = await client.command(f"UID FETCH 1:* {META_ITEMS}")
        uids = [int(m.group(1)) for line in lines if (m := _UID.search(line))]
        return uids, sum(int(m.group(1)) for line in lines if (m := _SIZE.search(line)))

    cold = await asyncio.gather(*(metadata(c, True) for c in clients))
    await ctx.phase()
    await asyncio.gather(*(metadata(c, False) for c in clients))
    await ctx.phase()

    read = await asyncio.gather(
        *(_bodies(c, uids) for c, (uids, _) in zip(clients, cold, strict=True))
    )
    await ctx.phase()
    for client in clients:
        await client.logout()
    return {
        "messages": sum(len(uids) for uids, _ in cold),
        "bytes": sum(size for _, size in cold),
        "body_octets": sum(read),
    }


async def imap_bodies_compressed(ctx: WorkerCtx, port: int, users: list[str]) -> dict[str, Any]:
    """The initial sync's bodies phase over COMPRESS=DEFLATE (RFC 4978): SELECT and the UIDs
    untimed, then every body one by one, compressed both ways."""
    clients = []
    for user in users:
        client = await ImapClient.connect(HOST, port)
        await client.login(user, PASSWORD)
        await client.compress()
        await client.command("SELECT INBOX")
        clients.append(client)
    listed = await asyncio.gather(*(c.command("UID SEARCH ALL") for c in clients))
    uid_lists = [parse_search(lines) for lines, _ in listed]
    await ctx.phase()

    read = await asyncio.gather(
        *(_bodies(c, uids) for c, uids in zip(clients, uid_lists, strict=True))
    )
    await ctx.phase()
    for client in clients:
        await client.logout()
    return {"messages": sum(len(u) for u in uid_lists), "body_octets": sum(read)}


async def imap_search(
    ctx: WorkerCtx, port: int, user: str, queries: list[str], repeats: int
) -> dict[str, Any]:
    """One untimed pass of every query (caches warm up), then ``repeats`` timed passes."""
    client = await ImapClient.connect(HOST, port)
    await client.login(user, PASSWORD)
    await client.command("SELECT INBOX")
    await ctx.phase()
    hits: dict[str, int] = {}
    times: dict[str, list[float]] = {q: [] for q in queries}
    for query in queries:
        lines, _ = await client.command(query)
        hits[query] = len(parse_search(lines))
    for _ in range(repeats):
        for query in queries:
            start = time.perf_counter()
            await client.command(query)
            times[query].append(time.perf_counter() - start)
    await ctx.phase()
    await client.logout()
    return {"hits": hits, "times": times}


#: The message ``imap_sort`` appends before each timed pass (a reply in an existing thread).
_NEW_MAIL = (
    "From: Bob <bob@example.org>\r\nSubject: Re: news {n}\r\nMessage-ID: <new{n}@bench.test>\r\n"
    "In-Reply-To: <1.sort.1700000037@example.org>\r\n"
    "References: <1.sort.1700000037@example.org>\r\n\r\nA new reply.\r\n"
)


async def imap_sort(
    ctx: WorkerCtx, port: int, user: str, queries: list[str], repeats: int
) -> dict[str, Any]:
    """One untimed pass (caches warm up), then ``repeats`` times: a new session appends one
    message (untimed), then each query is timed after that new mail ("new") and once more
    ("again")."""
    client = await ImapClient.connect(HOST, port)
    await client.login(user, PASSWORD)
    await client.command("SELECT INBOX")
    for query in queries:
        await client.command(query)
    await client.logout()
    await ctx.phase()
    whens = ("new", "again")
    times: dict[str, list[float]] = {f"{q} {when}": [] for q in queries for when in whens}
    for n in range(repeats):
        client = await ImapClient.connect(HOST, port)
        await client.login(user, PASSWORD)
        await client.command("SELECT INBOX")
        mail = _NEW_MAIL.format(n=n)
        await client.command(f"APPEND INBOX {{{len(mail)}+}}\r\n{mail}")
        await client.command("NOOP")
        for when in whens:
            for query in queries:
                start = time.perf_counter()
                await client.command(query)
                times[f"{query} {when}"].append(time.perf_counter() - start)
        await client.logout()
    await ctx.phase()
    return {"times": times}


async def smtp_ingress(
    ctx: WorkerCtx, port: int, users: list[str], count: int, data: bytes
) -> dict[str, Any]:
    """One connection per user, each sending ``count`` messages to that user."""
    clients = [await SmtpClient.connect(HOST, port) for _ in users]
    await ctx.phase()

    async def send(client: SmtpClient, user: str) -> None:
        for _ in range(count):
            await client.send("sender@example.org", [f"{user}@bench.test"], data)

    await asyncio.gather(*(send(c, u) for c, u in zip(clients, users, strict=True)))
    await ctx.phase()
    for client in clients:
        await client.quit()
    return {"messages": count * len(users)}


class IdleConnection(asyncio.Protocol):
    """An IMAP connection that logs in, selects, enters IDLE and timestamps every EXISTS.

    A bare Protocol rather than streams: the arrival time is taken in ``data_received`` itself,
    so thousands of connections in one process add as little delay as possible.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.idling = False
        self.exists: list[float] = []
        self.waiting: tuple[bytes, asyncio.Future[bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self.idling:
            self.exists.extend(now for _ in range(data.count(b" EXISTS\r\n")))
            return
        self.buffer += data
        while self.waiting is not None and b"\r\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\r\n")
            prefix, fut = self.waiting
            if line.startswith(prefix):
                self.waiting = None
                if not fut.done():
                    fut.set_result(line)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting[1].done():
            waiting[1].set_exception(ConnectionError("connection closed"))

    async def expect(self, prefix: bytes, send: bytes | None = None) -> bytes:
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.waiting = (prefix, fut)
        if send is not None and self.transport is not None:
            self.transport.write(send)
        self.data_received(b"")
        return await fut

    async def setup(self, user: str) -> None:
        await self.expect(b"* OK")
        for tag, cmd in ((b"l", f'LOGIN {user} "{PASSWORD}"'), (b"s", "SELECT INBOX")):
            line = await self.expect(tag + b" ", tag + b" " + cmd.encode() + b"\r\n")
            if not line.startswith(tag + b" OK"):
                raise ConnectionError(f"IDLE setup failed: {line[:200]!r}")
        await self.expect(b"+", b"i IDLE\r\n")
        self.idling = True


async def idle(ctx: WorkerCtx, port: int, users: list[str], concurrency: int) -> dict[str, Any]:
    """One IDLE connection per entry of ``users``; reports arrivals until told to stop."""
    loop = asyncio.get_running_loop()
    conns: list[IdleConnection] = []
    gate = asyncio.Semaphore(concurrency)

    async def open_one(user: str) -> IdleConnection:
        async with gate:
            for attempt in range(5):
                try:
                    _, proto = await loop.create_connection(IdleConnection, HOST, port)
                    await asyncio.wait_for(proto.setup(user), SETUP_TIMEOUT)
                    return proto
                except (ConnectionError, OSError, TimeoutError):
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    conns = list(await asyncio.gather(*(open_one(u) for u in users)))
    await ctx.phase()
    stop = asyncio.ensure_future(ctx.wait_stop())
    last = -1
    while not stop.done():
        total = sum(len(c.exists) for c in conns)
        if total != last:
            ctx.report(total)
            last = total
        await asyncio.sleep(0.005)
    await ctx.phase()
    lost = sum(c.lost for c in conns)
    ports = [c.transport.get_extra_info("sockname")[1] if c.transport else 0 for c in conns]
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return {"arrivals": [c.exists for c in conns], "users": users, "lost": lost, "ports": ports}
