"""``AsyncMailServer``: a test mail server on the running loop, with the test API as coroutines."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Any

from mailsrv.config import Config
from mailsrv.context import ServerContext
from mailsrv.faults import FaultInjector
from mailsrv.personas.catalog import persona_named
from mailsrv.report.findings import Finding
from mailsrv.server import MailServer, Ports
from mailsrv.store.base import INBOX, MessageGone, NoSuchFolder, NoSuchUser
from mailsrv.store.memory import MemoryStore
from mailsrv.testing.messages import StoredMessage, message_bytes
from mailsrv.testing.options import build_config
from mailsrv.trace import TraceLine

#: While waiting for mail, re-read the folder this often even without an event (other processes).
RECHECK_SECONDS = 0.25


class MailTimeout(TimeoutError):
    """``wait_for_messages`` gave up; the message says what did arrive, and where."""


class AsyncMailServer:
    """A test mail server on the running loop: ``async with AsyncMailServer(**options) as s``.

    ``options`` are those of ``build_config``; ``base_dir`` (default: a new temporary directory,
    removed on exit) holds the Maildir and the users file.
    """

    def __init__(self, base_dir: Path | str | None = None, **options: Any) -> None:
        self._tmp: Path | None = None
        self._owns_dir = base_dir is None
        if base_dir is None:
            self._tmp = base_dir = Path(tempfile.mkdtemp(prefix="mailsrv-test-"))
        self.base_dir = Path(base_dir)
        try:
            self.options = build_config(self.base_dir, **options)
        except BaseException:
            self._remove_tmp()
            raise
        self._server: MailServer | None = None
        self._memory: MemoryStore | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the mail server is already running")
        if self._owns_dir and self._tmp is None:
            raise RuntimeError("this server's temporary directory is gone: make a new server")
        persona = persona_named(self.options.config.persona)
        memory = self.options.store == "memory"
        self._memory = (
            MemoryStore(persona.special_folders, all_mail=persona.all_mail) if memory else None
        )
        self._server = MailServer(self.options.config, store=self._memory)
        try:
            await self._server.start()
            await self._add_configured_users()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        try:
            if self._server is not None:
                await self._server.stop()
            if self._memory is not None:
                await self._memory.close()
        finally:
            self._server = self._memory = None
            await asyncio.to_thread(self._remove_tmp)

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> AsyncMailServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _add_configured_users(self) -> None:
        for name, password in self.options.users.items():
            await self.add_user(name, password)

    # -- what a test reads -----------------------------------------------------------------------

    @property
    def server(self) -> MailServer:
        if self._server is None or self._server.ctx is None:
            raise RuntimeError("the mail server is not running")
        return self._server

    @property
    def context(self) -> ServerContext:
        return self.server.context

    @property
    def config(self) -> Config:
        return self.options.config

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def ports(self) -> Ports:
        return self.server.ports

    @property
    def maildir(self) -> Path:
        return self.config.maildir

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    @property
    def faults(self) -> FaultInjector:
        return self.context.faults

    @property
    def transcripts(self) -> list[TraceLine]:
        """Every line of every session so far (redacted), oldest first."""
        return _copy_lines(self.context)

    def transcript_text(self, last: int | None = None) -> str:
        """The transcripts as text, ``session C/S: line`` per line (the last ``last`` only)."""
        lines = self.transcripts
        if last is not None:
            lines = lines[-last:] if last > 0 else []
        return "".join(f"{t.session} {t.direction}: {t.text}\n" for t in lines)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts this server's CA (and checks the host name)."""
        if not self.config.tls:
            raise RuntimeError("this server runs without TLS (tls=False)")
        from mailsrv.tls import client_ssl_context

        return client_ssl_context(self.ca_file)

    # -- the API (the names are api_names.TEST_API, shared with ThreadedMailServer and .aio) ----

    async def add_user(self, name: str, password: str) -> None:
        """A user who can log in with ``password``, with an empty mailbox (removed by reset)."""
        self.context.auth.add_user(name, password)
        await self.context.store.ensure_user(name)

    async def deliver(
        self,
        user: str,
        message: bytes | str | Message,
        folder: str = INBOX,
        flags: Iterable[str] = (),
    ) -> int:
        """Put a message straight into a folder (made if missing); returns its UID.

        With ``scan=`` engines configured it is scanned first, as SMTP does: spam goes to the
        Junk folder (the UID is then Junk's), a virus raises ``VirusRefused`` (nothing stored)
        or, with ``virus_action="quarantine"``, goes to Quarantine; ``msg.scan`` tells."""
        store = self.context.store
        if not await store.user_exists(user):
            if not (self.config.dev or self.context.auth.known(user)):
                raise NoSuchUser(f"no user {user!r}: add_user() first, or run with dev=True")
            await store.ensure_user(user)
        scanned = await self.context.scanner.scan(message_bytes(message), "api")
        try:
            return (await scanned.deliver(store, user, folder, flags, actor="api")).uid
        except NoSuchFolder:
            await store.create_folder(user, folder)
            return (await scanned.deliver(store, user, folder, flags, actor="api")).uid

    async def messages(self, user: str, folder: str = INBOX) -> list[StoredMessage]:
        """The folder's messages by UID; [] for a user who has no mailbox yet."""
        store = self.context.store
        if not await store.user_exists(user):
            return []
        mailbox = await store.open(user, folder)
        snap = await mailbox.snapshot()
        out: list[StoredMessage] = []
        for info in snap.messages:
            try:
                raw = await mailbox.read(info.uid)
            except MessageGone:
                continue
            out.append(StoredMessage(info.uid, info.flags, raw, snap.name, info.internal_date))
        return out

    async def wait_for_messages(
        self,
        user: str,
        count: int = 1,
        folder: str = INBOX,
        timeout: float = 5.0,  # noqa: ASYNC109 (the same signature as the synchronous API)
    ) -> list[StoredMessage]:
        """Wait until the folder holds at least ``count`` messages; return all of them.

        Wakes on the store's change events and also re-reads the folder every
        ``RECHECK_SECONDS`` (mail delivered by another process). Raises ``MailTimeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sub = self.context.store.subscribe(user)
        try:
            while True:
                # Count first (a snapshot is cheap); read the messages only once enough are in.
                if await self._count(user, folder) >= count:
                    found = await self._messages_if_folder(user, folder)
                    if len(found) >= count:
                        return found
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise MailTimeout(await self._timeout_report(user, count, folder, timeout))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, RECHECK_SECONDS)):
                        await sub.get()
                while sub.get_nowait() is not None:
                    pass
        finally:
            sub.close()

    async def _count(self, user: str, folder: str) -> int:
        store = self.context.store
        try:
            return len((await (await store.open(user, folder)).snapshot()).messages)
        except (NoSuchFolder, NoSuchUser):
            return 0

    async def _messages_if_folder(self, user: str, folder: str) -> list[StoredMessage]:
        try:
            return await self.messages(user, folder)
        except (NoSuchFolder, NoSuchUser):
            return []

    async def _timeout_report(self, user: str, count: int, folder: str, waited: float) -> str:
        found = await self._messages_if_folder(user, folder)
        head = (
            f"timed out after {waited:g} s waiting for {count} message(s) in {user}'s {folder}; "
            f"{len(found)} arrived"
        )
        lines = [head + (":" if found else ".")]
        lines += [f"  uid {m.uid}: {m.subject!r} from {m.sender}" for m in found[-10:]]
        elsewhere = await self._mail_elsewhere(user, folder)
        if elsewhere:
            lines.append("mail elsewhere: " + ", ".join(elsewhere))
        return "\n".join(lines)

    async def _mail_elsewhere(self, user: str, folder: str) -> list[str]:
        """Other folders holding mail: a hint when mail went to the wrong user or folder."""
        store = self.context.store
        out: list[str] = []
        for name in (await store.list_users())[:20]:
            for info in await store.list_folders(name):
                if (name, info.name) == (user, folder):
                    continue
                with contextlib.suppress(NoSuchFolder):
                    snap = await (await store.open(name, info.name)).snapshot()
                    if snap.messages:
                        out.append(f"{name}/{info.name} ({len(snap.messages)})")
        return out

    async def folders(self, user: str) -> list[str]:
        """The user's folder names, INBOX first; [] for a user who has no mailbox yet."""
        store = self.context.store
        if not await store.user_exists(user):
            return []
        return [f.name for f in await store.list_folders(user)]

    async def create_folder(self, user: str, name: str) -> None:
        """Make a folder (and the user's mailbox, if missing)."""
        await self.context.store.ensure_user(user)
        await self.context.store.create_folder(user, name)

    async def bump_uidvalidity(self, user: str, folder: str = INBOX) -> int:
        """Give the folder a new UIDVALIDITY, as after a server-side rebuild; returns it."""
        mailbox = await self.context.store.open(user, folder)
        return await mailbox.uidvalidity_bump()

    async def set_quota(
        self,
        user: str,
        storage: int | None = None,
        messages: int | None = None,
        rules: Sequence[str] = (),
    ) -> None:
        """Give ``user`` a quota (RFC 9208): ``storage`` octets and ``messages`` over all its
        folders (None: no limit), and Dovecot mailbox ``rules`` (``"Trash:storage=+1M"``,
        ``"Spam:ignore"``), over the config's and the users file's; ``reset`` drops it."""
        self.context.quota.set(user, storage, messages, rules)

    async def report(self, user: str) -> list[Finding]:
        """The report card of ``user``'s client(s): one ``Finding`` per habit noticed in their
        sessions (``[]`` for a client that behaves). Habits seen at close (``no-logout``) show
        once the server has seen the connection end."""
        card = self.context.report
        return [] if card is None else card.for_user(user)

    async def reset(self) -> None:
        """Back to a fresh server: no mail, no folders, no users added with ``add_user``, no
        quota set with ``set_quota``.

        The users given as ``users=`` stay (with empty mailboxes); faults, transcripts and
        report cards are cleared. Open connections stay open and see the change as mailboxes
        emptied.
        """
        ctx = self.context
        await ctx.store.reset()
        ctx.auth.extra.clear()
        ctx.quota.clear()
        ctx.faults.clear()
        ctx.tracer.clear()
        if ctx.report is not None:
            ctx.report.clear()
        await self._add_configured_users()


def _copy_lines(ctx: ServerContext) -> list[TraceLine]:
    # Copying a deque another thread appends to can fail mid-copy; a retry then succeeds.
    for _ in range(10):
        with contextlib.suppress(RuntimeError):
            return list(ctx.tracer.lines)
    return list(ctx.tracer.lines)
