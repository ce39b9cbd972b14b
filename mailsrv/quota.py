"""Per-user quota (RFC 9208 STORAGE and MESSAGE): the limits and the check before a save.

A user's limits are, in order: what the fixture or the API set (``QuotaPolicy.set``), the users
file's ``userdb_quota_rule`` / ``userdb_quota_rule2`` ... extra fields in Dovecot's syntax
(``*:storage=1G``, ``*:messages=1000``; ``storage`` counts KiB unless a unit follows, ``bytes``
counts octets, as Dovecot reads them), then ``[limits] quota_storage`` / ``quota_messages``.
Usage comes from the store's cached listings (``Store.usage``), so a check costs no file read.

The check is made before the message is written, and the store writes a message whole or not at
all, so a refused save leaves nothing behind. ``reserve`` checks and then holds the user's quota
until the save is done, so two saves in one process never both pass on the same free room;
saves by two processes at the same moment may (each checks what the store holds).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Protocol

from mailsrv.config import Config
from mailsrv.store.base import NoSuchUser, OverQuota, Store, Usage

#: RFC 9208 §5 resource names.
STORAGE = "STORAGE"
MESSAGE = "MESSAGE"
#: The one quota root every user has; named, since some clients show no quota for "".
ROOT = "User quota"

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_RULE = re.compile(r"(storage|bytes|messages)=(\d+)([bkmgt]?)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """Octets and messages a user may keep; None is no limit."""

    storage: int | None = None
    messages: int | None = None

    @property
    def limited(self) -> bool:
        return self.storage is not None or self.messages is not None


def parse_quota_rule(rule: str, base: QuotaLimits) -> QuotaLimits:
    """``base`` with one Dovecot quota rule applied: ``*:storage=1G:messages=100``. Rules for
    one mailbox (``Trash:storage=+100M``) and ``ignore`` rules are not used here."""
    where, _, spec = rule.strip().partition(":")
    if where != "*":
        return base
    out = base
    for key, number, unit in _RULE.findall(spec):
        value = int(number)
        key = key.lower()
        if key == "messages":
            out = replace(out, messages=value or None)
            continue
        scale = _UNITS[unit.upper()] if unit else (1 << 10 if key == "storage" else 1)
        out = replace(out, storage=value * scale or None)
    return out


def limits_from_fields(fields: dict[str, str], base: QuotaLimits) -> QuotaLimits:
    """The limits a users-file line's extra fields give (``userdb_quota_rule``, ``...2``, ...)."""
    out = base
    for key in sorted(k for k in fields if re.fullmatch(r"(userdb_)?quota_rule\d*", k)):
        out = parse_quota_rule(fields[key], out)
    return out


class QuotaPolicy:
    """One server's quota: limits per user, and the check before every save."""

    def __init__(self, config: Config, store: Store, fields: UserFields) -> None:
        limits = config.limits
        self.default = QuotaLimits(limits.quota_storage or None, limits.quota_messages or None)
        self._store = store
        self._fields = fields
        self._set: dict[str, QuotaLimits] = {}
        #: One lock per user with a save in progress (gone with the last holder or waiter).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def set(self, user: str, storage: int | None = None, messages: int | None = None) -> None:
        """Give ``user`` these limits (octets, messages; None: none), over any other source."""
        self._set[user] = QuotaLimits(storage or None, messages or None)

    def clear(self) -> None:
        """Forget the limits ``set`` gave (fixture reset)."""
        self._set.clear()

    def limits(self, user: str) -> QuotaLimits:
        given = self._set.get(user)
        if given is not None:
            return given
        return limits_from_fields(self._fields.extra_fields(user), self.default)

    async def usage(self, user: str) -> Usage:
        try:
            return await self._store.usage(user)
        except NoSuchUser:  # no mail yet (dev mode makes the mailbox on first delivery)
            return Usage()

    async def check(self, user: str, octets: int, messages: int = 1) -> None:
        """Raise ``OverQuota`` if adding ``messages`` of ``octets`` in all goes over a limit."""
        limits = self.limits(user)
        if not limits.limited:
            return
        used = await self.usage(user)
        if limits.messages is not None and used.messages + messages > limits.messages:
            raise OverQuota(MESSAGE)
        if limits.storage is not None and used.octets + octets > limits.storage:
            raise OverQuota(STORAGE)

    async def reserve(self, users: Iterable[str], octets: int, messages: int = 1) -> Reservation:
        """``check`` each user, holding each one's quota until the ``Reservation`` is released
        (``with await policy.reserve(...): save``): this process's other saves for them wait."""
        held: list[asyncio.Lock] = []
        try:
            for user in sorted(set(users)):  # one order for everyone: no two saves deadlock
                if not self.limits(user).limited:
                    continue
                lock = self._locks.get(user)
                if lock is None:
                    lock = self._locks[user] = asyncio.Lock()
                await lock.acquire()
                held.append(lock)
                await self.check(user, octets, messages)
        except BaseException:
            Reservation(held).release()
            raise
        return Reservation(held)


class Reservation:
    """The quota held for one save (``QuotaPolicy.reserve``); release it once the save is done."""

    def __init__(self, locks: list[asyncio.Lock]) -> None:
        self._locks = locks

    def release(self) -> None:
        while self._locks:
            self._locks.pop().release()

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
