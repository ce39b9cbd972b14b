"""Authentication: the users file, password checks, and the failed-login policy.

Protocol sessions call ``Authenticator.login(user, password, peer)``: it returns the canonical
user name or None, and on failure sleeps for a delay that grows with the failures from that
address (the same delay whether the user exists or not). ``blocked(peer)`` says whether an
address is refused for now. ``plaintext_allowed(tls, peer)`` is the DESIGN.md policy.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from pathlib import Path

from mailsrv.config import Config
from mailsrv.net.local import is_loopback
from mailsrv.net.peer_state import FailedLogins, LocalFailedLogins
from mailsrv.passwords import (
    DEFAULT_SCHEME,
    PasswordSchemeError,
    check_password,
    hash_password,
    verify_password,
)
from mailsrv.store.base import InvalidName
from mailsrv.store.names import check_user_name

log = logging.getLogger("mailsrv.auth")


class UsersFile:
    """Dovecot passwd-file lines ``user:{SCHEME}hash[:...]``; re-read when the file changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._users: dict[str, str] = {}

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._users, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        users: dict[str, str] = {}
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            name, _, rest = line.partition(":")
            users[name] = rest.split(":", 1)[0]
        self._users, self._mtime = users, mtime

    def reload(self) -> None:
        """Read the file again at the next lookup, even if its modification time is the same."""
        self._mtime = None

    def get(self, user: str) -> str | None:
        self._load()
        return self._users.get(user)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._users)

    def set(self, user: str, password: str, scheme: str = DEFAULT_SCHEME) -> None:
        """Add or update ``user`` with ``password`` hashed in ``scheme`` (ARGON2ID by default)."""
        check_user_name(user)
        self._rewrite(user, hash_password(password, scheme))

    def delete(self, user: str) -> bool:
        self._load()
        if user not in self._users:
            return False
        self._rewrite(user, None)
        return True

    def _rewrite(self, user: str, hashed: str | None) -> None:
        if self.path is None:
            raise InvalidName("no users file configured")
        self._load()
        users = dict(self._users)
        if hashed is None:
            users.pop(user, None)
        else:
            users[user] = hashed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(f"{u}:{h}\n" for u, h in sorted(users.items())))
        tmp.chmod(0o600)
        tmp.replace(self.path)
        self._mtime = None


class Authenticator:
    """Checks passwords against the users file (or accepts any in dev mode)."""

    def __init__(self, config: Config, users: UsersFile | None = None) -> None:
        self.config = config
        self.users = users if users is not None else UsersFile(config.users_file)
        #: Users added through the API (the fixture), password in memory.
        self.extra: dict[str, str] = {}
        #: Failed logins per address: this process's, or the workers' shared table.
        self.failures: FailedLogins = LocalFailedLogins()

    def add_user(self, user: str, password: str) -> None:
        check_user_name(user)
        self.extra[user] = password

    def known(self, user: str) -> bool:
        return user in self.extra or self.users.get(user) is not None

    def _check(self, user: str, password: str) -> bool:
        if user in self.extra:
            return hmac.compare_digest(self.extra[user].encode(), password.encode())
        stored = self.users.get(user)
        if stored is None:
            if self.config.dev:
                return True
            # Same work as a real check, so timing says nothing about whether the user exists.
            verify_password(password, None)
            return False
        try:
            return check_password(password, stored, user)
        except PasswordSchemeError as exc:
            # One line naming the user and the scheme; the stored value never reaches the log.
            log.warning("users file %s: user %s: %s; login refused", self.users.path, user, exc)
            return False

    def secret_for_apop(self, user: str) -> str | None:
        """The clear-text secret APOP needs, when the stored form allows it."""
        if user in self.extra:
            return self.extra[user]
        stored = self.users.get(user)
        if stored is not None and stored.upper().startswith("{PLAIN}"):
            return stored[7:]
        return None

    def blocked(self, peer: str) -> bool:
        return self.failures.blocked(peer, time.monotonic())

    def plaintext_allowed(self, tls: bool, peer: str) -> bool:
        return tls or self.config.allow_plaintext_auth or is_loopback(peer)

    def local_user(self, login: str) -> str:
        """``alice@localhost`` logs in as ``alice`` when the domain is ours (any domain in dev)."""
        local, at, domain = login.rpartition("@")
        if not at or not local:
            return login
        ours = {"localhost", self.config.server_name, *self.config.hostnames}
        ours = {name.lower() for name in ours}
        return local if self.config.dev or domain.lower() in ours else login

    async def login(self, user: str, password: str, peer: str) -> str | None:
        """The canonical user on success; None after the failure delay otherwise."""
        if self.blocked(peer):
            return None
        user = self.local_user(user)
        try:
            check_user_name(user)
            ok = await asyncio.to_thread(self._check, user, password)
        except InvalidName:
            ok = False
        if ok:
            self.failures.clear(peer)
            return user
        await self.record_failure(peer)
        return None

    async def record_failure(self, peer: str) -> None:
        limits = self.config.limits
        count = self.failures.record(
            peer, time.monotonic(), limits.auth_failures_per_ip, limits.auth_block_seconds
        )
        delay = min(limits.auth_failure_delay * (1 + count // 5), 10.0)
        if delay > 0:
            await asyncio.sleep(delay)
