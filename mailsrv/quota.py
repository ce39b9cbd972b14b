"""Per-user quota (RFC 9208 STORAGE and MESSAGE): the limits and the check before a save.

A user's rules are, in order: what the fixture or the API set (``QuotaPolicy.set``: limits over
all mailboxes), the users file's ``userdb_quota_rule`` / ``userdb_quota_rule2`` ... extra
fields in Dovecot's syntax (``mailsrv.quota_rules``: ``*:storage=1G``, ``Trash:storage=+100M``,
``SPAM:ignore``), then ``[limits] quota_storage`` / ``quota_messages``. Usage is the sum over
the mailboxes that count (not ``ignore``d), from the store's cached listings.

The check is made before the message is written, and the store writes a message whole or not at
all, so a refused save leaves nothing behind. ``reserve`` checks and then holds the user's quota
until the save is done: within the process by a lock per user, and across processes (workers,
``mailsrv deliver``, other hosts on the root) by the store's quota lock file
(``store.quota_lock``), under which the usage is re-read from the disk (three stats a folder,
a rescan only of folders another process changed). So no two saves anywhere both pass on the
same free room. A user without limits takes neither lock.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Protocol

from mailsrv.config import Config
from mailsrv.quota_rules import QuotaLimits, QuotaRules, parse_quota_rule, rules_from_fields
from mailsrv.store.base import INBOX, NoSuchUser, OverQuota, Store, Usage
from mailsrv.store.quota_lock import QuotaFileLock

__all__ = ["MESSAGE", "ROOT", "STORAGE", "QuotaLimits", "QuotaPolicy", "QuotaRules"]
__all__ += ["Reservation", "parse_quota_rule", "rules_from_fields"]

#: RFC 9208 §5 resource names.
STORAGE = "STORAGE"
MESSAGE = "MESSAGE"
#: The one quota root every user has; named, since some clients show no quota for "".
ROOT = "User quota"


class QuotaPolicy:
    """One server's quota: rules per user, and the check before every save."""

    def __init__(self, config: Config, store: Store, fields: UserFields) -> None:
        limits = config.limits
        self.default = QuotaLimits(limits.quota_storage or None, limits.quota_messages or None)
        self._store = store
        self._fields = fields
        self._set: dict[str, QuotaRules] = {}
        #: One lock per user with a save in progress (gone with the last holder or waiter).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def set(
        self,
        user: str,
        storage: int | None = None,
        messages: int | None = None,
        rules: Iterable[str] = (),
    ) -> None:
        """Give ``user`` these limits (octets, messages; None: none) and mailbox ``rules``
        (``"Trash:storage=+10M"``, ``"Spam:ignore"``), over any other source."""
        given = QuotaRules(QuotaLimits(storage or None, messages or None))
        for rule in rules:
            given = parse_quota_rule(rule, given)
        self._set[user] = given

    def clear(self) -> None:
        """Forget the limits ``set`` gave (fixture reset)."""
        self._set.clear()

    def rules(self, user: str) -> QuotaRules:
        given = self._set.get(user)
        if given is not None:
            return given
        return rules_from_fields(self._fields.extra_fields(user), QuotaRules(self.default))

    def limits(self, user: str) -> QuotaLimits:
        """The user's limits over all mailboxes (the ``*`` rule: what GETQUOTA reports)."""
        return self.rules(user).limits

    async def usage(self, user: str, fresh: bool = False) -> Usage:
        """What counts against the user's quota: every mailbox but the ``ignore``d ones."""
        return await self._usage(user, self.rules(user), fresh)

    async def _usage(self, user: str, rules: QuotaRules, fresh: bool) -> Usage:
        try:
            if not rules.mailboxes and not fresh:
                return await self._store.usage(user)
            folders = await self._store.folder_usage(user, fresh)
        except NoSuchUser:  # no mail yet (dev mode makes the mailbox on first delivery)
            return Usage()
        return Usage.total(u for name, u in folders.items() if rules.counted(name))

    async def check(
        self,
        user: str,
        octets: int,
        messages: int = 1,
        folder: str = INBOX,
        fresh: bool = False,
    ) -> None:
        """Raise ``OverQuota`` if adding ``messages`` of ``octets`` in all into ``folder``
        goes over a limit (``fresh``: usage re-read from the disk first)."""
        await self._check(user, self.rules(user), octets, messages, folder, fresh)

    async def _check(
        self, user: str, rules: QuotaRules, octets: int, messages: int, folder: str, fresh: bool
    ) -> None:
        limits = rules.limits_for(folder)
        if not limits.limited:
            return
        used = await self._usage(user, rules, fresh)
        if limits.messages is not None and used.messages + messages > limits.messages:
            raise OverQuota(MESSAGE)
        if limits.storage is not None and used.octets + octets > limits.storage:
            raise OverQuota(STORAGE)

    async def reserve(
        self,
        users: Iterable[str],
        octets: int,
        messages: int = 1,
        folder: str = INBOX,
        folders: Mapping[str, str] | None = None,
    ) -> Reservation:
        """``check`` each user against a save into ``folder`` (or the user's own folder in
        ``folders``: where the scanner files it), holding each one's quota until the
        ``Reservation`` is released (``with await policy.reserve(...): save``): the other saves
        for them, in this process and in others, wait."""
        held = Reservation()
        try:
            for user in sorted(set(users)):  # one order for everyone: no two saves deadlock
                target = folder if folders is None else folders.get(user, folder)
                rules = self.rules(user)  # the users file's fields, parsed once per save
                if not rules.limits_for(target).limited:
                    continue
                lock = self._locks.get(user)
                if lock is None:
                    lock = self._locks[user] = asyncio.Lock()
                await lock.acquire()
                held.locks.append(lock)
                path = self._store.quota_lock_path(user)
                if path is not None:
                    try:
                        held.files.append(await QuotaFileLock.acquire(path))
                    except FileNotFoundError:  # no mailbox yet: the save makes it, or fails
                        pass
                await self._check(user, rules, octets, messages, target, path is not None)
        except BaseException:
            held.release()
            raise
        return held


class Reservation:
    """The quota held for one save (``QuotaPolicy.reserve``); release it once the save is done."""

    def __init__(self) -> None:
        self.locks: list[asyncio.Lock] = []
        self.files: list[QuotaFileLock] = []

    def release(self) -> None:
        while self.files:
            self.files.pop().release()
        while self.locks:
            self.locks.pop().release()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class UserFields(Protocol):
    """Where a user's extra fields come from: ``auth.UsersFile``."""

    def extra_fields(self, user: str) -> dict[str, str]: ...
