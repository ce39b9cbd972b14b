"""Authentication: the users file, password checks, and the failed-login policy.

Protocol sessions call ``Authenticator.login(user, password, peer)``: it returns the canonical
user name or None, and on failure sleeps for a delay that grows with the failures from that
address (the same delay whether the user exists or not). ``blocked(peer)`` says whether an
address is refused for now. ``plaintext_allowed(tls, peer)`` is the DESIGN.md policy.

SASL beyond PLAIN and LOGIN goes through ``resolve(exchange, step, peer)``:
SCRAM-SHA-256 keys from a ``{SCRAM-SHA-256}`` entry, a plain-text one or a fixture user's
password; bearer tokens (OAUTHBEARER, XOAUTH2) from the users file's ``mailsrv_oauth_token=``
extra field, or any token in dev mode. ``mechanisms()`` lists those that can work now.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from pathlib import Path

from mailsrv.config import Config
from mailsrv.net import sasl
from mailsrv.net.local import is_loopback
from mailsrv.net.peer_state import FailedLogins, LocalFailedLogins
from mailsrv.net.scram_keys import ITERATIONS, BadScramValue, ScramKeys
from mailsrv.passwords import (
    CLEAR_SCHEMES,
    DEFAULT_SCHEME,
    PasswordSchemeError,
    check_password,
    clear_secret,
    hash_password,
    split_scheme,
    verify_password,
)
from mailsrv.store.base import InvalidName
from mailsrv.store.names import check_user_name

log = logging.getLogger("mailsrv.auth")


#: The users file's extra field (Dovecot passwd-file's 8th field, ``key=value`` words) that holds
#: a user's OAuth bearer token; repeat it for several tokens.
OAUTH_TOKEN_FIELD = "mailsrv_oauth_token"  # noqa: S105 - a field name, not a secret


def _token_among(known: tuple[str, ...], token: str) -> bool:
    """Whether ``token`` is one of ``known``, every one compared in constant time."""
    return any([hmac.compare_digest(t.encode(), token.encode()) for t in known])


class UsersFile:
    """Dovecot passwd-file lines ``user:{SCHEME}hash[:uid:gid:gecos:home:shell:extra fields]``;
    re-read when the file changes. Rewriting a user keeps the fields after the password."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._users: dict[str, str] = {}
        #: What follows the password on each line (uid:gid:gecos:home:shell:extra fields).
        self._rests: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, ...]] = {}
        #: Each line's userdb extra fields, parsed once per read of the file.
        self._fields: dict[str, dict[str, str]] = {}
        self._scram_capable = False

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._users, self._rests, self._tokens, self._mtime = {}, {}, {}, None
            self._fields = {}
            self._scram_capable = False
            return
        if mtime == self._mtime:
            return
        users: dict[str, str] = {}
        rests: dict[str, str] = {}
        tokens: dict[str, tuple[str, ...]] = {}
        fields: dict[str, dict[str, str]] = {}
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            name, _, rest = line.partition(":")
            users[name], _, after = rest.partition(":")
            rests[name] = after
            words = [word.partition("=") for word in ":".join(after.split(":")[5:]).split()]
            fields[name] = {key: value for key, eq, value in words if eq}
            found = tuple(value for key, _, value in words if key == OAUTH_TOKEN_FIELD and value)
            if found:
                tokens[name] = found
        self._users, self._rests, self._tokens, self._mtime = users, rests, tokens, mtime
        self._fields = fields
        self._scram_capable = any(
            split_scheme(v)[0] in ("SCRAM-SHA-256", *CLEAR_SCHEMES) for v in users.values()
        )

    def tokens(self, user: str) -> tuple[str, ...]:
        """The bearer tokens of ``user`` (``mailsrv_oauth_token=`` extra fields)."""
        self._load()
        return self._tokens.get(user, ())

    def token_owner(self, token: str) -> str | None:
        """The user one of whose tokens is ``token`` (every token compared, in constant time)."""
        self._load()
        owner = None
        for user, tokens in self._tokens.items():
            if _token_among(tokens, token):
                owner = user
        return owner

    def has_tokens(self) -> bool:
        self._load()
        return bool(self._tokens)

    def scram_capable(self) -> bool:
        """Whether some user's stored secret allows SCRAM-SHA-256 (SCRAM keys or a plain text)."""
        self._load()
        return self._scram_capable

    def reload(self) -> None:
        """Read the file again at the next lookup, even if its modification time is the same."""
        self._mtime = None

    def get(self, user: str) -> str | None:
        self._load()
        return self._users.get(user)

    def extra_fields(self, user: str) -> dict[str, str]:
        """The line's userdb extra fields (its 7th column on, ``key=value`` separated by
        spaces, as Dovecot's passwd-file has them): ``{"userdb_quota_rule": "*:storage=1G"}``."""
        self._load()
        return dict(self._fields.get(user, {}))

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
        rests = self._rests  # the other columns (extra fields: quota rules, tokens) are kept
        lines = (
            f"{u}:{h}:{rests[u]}" if rests.get(u) else f"{u}:{h}" for u, h in sorted(users.items())
        )
        tmp.write_text("".join(line + "\n" for line in lines))
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
        #: Salts SCRAM keys made from a plain text (or made up for a user without keys): the same
        #: user gets the same salt for the life of the process, known user or not.
        self._salt_key = secrets.token_bytes(32)

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
        found, delay = await self.attempt(user, password, peer)
        if found is None and delay > 0:
            await asyncio.sleep(delay)
        return found

    async def attempt(self, user: str, password: str, peer: str) -> tuple[str | None, float]:
        """``login`` without its sleep: the canonical user or None, and the seconds the client
        must wait before it tries again (nginx's ``Auth-Wait`` makes it wait, not us)."""
        if self.blocked(peer):
            return None, 0.0
        user = self.local_user(user)
        try:
            check_user_name(user)
            ok = await asyncio.to_thread(self._check, user, password)
        except InvalidName:
            ok = False
        if ok:
            self.failures.clear(peer)
            return user, 0.0
        return None, self.count_failure(peer)

    async def record_failure(self, peer: str) -> None:
        delay = self.count_failure(peer)
        if delay > 0:
            await asyncio.sleep(delay)

    def count_failure(self, peer: str) -> float:
        """Count a failed login from ``peer`` (blocking it past the limit); the seconds to wait
        before answering it."""
        limits = self.config.limits
        count = self.failures.record(
            peer, time.monotonic(), limits.auth_failures_per_ip, limits.auth_block_seconds
        )
        return min(limits.auth_failure_delay * (1 + count // 5), 10.0)

    # --- SASL beyond PLAIN and LOGIN (mailsrv.net.sasl) -----------------------------------

    def mechanisms(self) -> tuple[str, ...]:
        """The SASL mechanisms that can log someone in now, in the order they are advertised:
        SCRAM-SHA-256 when a user's secret allows it, the bearer mechanisms in dev mode or when
        the users file holds tokens."""
        bearer = self.config.dev or self.users.has_tokens()
        possible = {
            "SCRAM-SHA-256": bool(self.extra) or self.users.scram_capable(),
            "OAUTHBEARER": bearer,
            "XOAUTH2": bearer,
        }
        return tuple(m for m in sasl.MECHANISMS if possible.get(m, True))

    def scram_keys(self, login: str) -> ScramKeys:
        """``login``'s SCRAM-SHA-256 keys; made-up ones (a failed proof) when it has none. Every
        path derives keys once, so the time taken says nothing about the user."""
        user = self.local_user(login)
        salt = hmac.digest(self._salt_key, user.encode("utf-8", "surrogateescape"), "sha256")[:16]
        secret: bytes | None = None
        stored_keys: ScramKeys | None = None
        if user in self.extra:
            secret = self.extra[user].encode()
        elif (stored := self.users.get(user)) is not None:
            scheme, _, value = split_scheme(stored)
            if scheme == "SCRAM-SHA-256":
                try:
                    stored_keys = ScramKeys.parse(value, "sha256")
                except BadScramValue as exc:
                    log.warning(
                        "users file %s: user %s: password scheme {SCRAM-SHA-256} value %s; "
                        "login refused",
                        self.users.path,
                        user,
                        exc,
                    )
            else:
                secret = clear_secret(stored)
                if secret is None:
                    log.info(
                        "user %s: SCRAM-SHA-256 needs a {SCRAM-SHA-256} or plain-text password, "
                        "the users file has {%s}; login refused",
                        user,
                        scheme,
                    )
        # Without a secret: keys of a random password, which no proof matches.
        password = secret if secret is not None else secrets.token_bytes(32)
        derived = ScramKeys.derive(password, salt, ITERATIONS, "sha256")
        if secret is None and stored_keys is not None:
            return stored_keys
        return derived

    def token_user(self, login: str, token: str) -> str | None:
        """The user a bearer token logs in: in dev mode anyone named; otherwise one whose
        ``mailsrv_oauth_token`` it is (the token alone names its user when ``login`` is "")."""
        if not login:
            return self.users.token_owner(token)
        user = self.local_user(login)
        try:
            check_user_name(user)
        except InvalidName:
            return None
        if self.config.dev:
            return user
        return user if _token_among(self.users.tokens(user), token) else None

    async def resolve(
        self, exchange: sasl.Exchange, step: sasl.Step, peer: str
    ) -> sasl.Step | sasl.LoggedIn:
        """Carry ``exchange`` past the steps that need the users file: the result is what the
        protocol acts on, a ``Challenge`` to send, ``Credentials`` to check with ``login``, a
        ``LoggedIn`` or a ``SaslError`` (a wrong proof or token was counted and delayed here)."""
        while True:
            if isinstance(step, sasl.NeedSecret | sasl.Bearer) and self.blocked(peer):
                return sasl.SaslError(sasl.Failure.TOKEN_REFUSED)
            if isinstance(step, sasl.NeedSecret):
                step = exchange.provide(await asyncio.to_thread(self.scram_keys, step.user))
            elif isinstance(step, sasl.Bearer):
                user = self.token_user(step.user, step.token)
                if user is not None:
                    self.failures.clear(peer)
                    return sasl.LoggedIn(user)
                await self.record_failure(peer)
                return exchange.refuse()
            elif isinstance(step, sasl.Proven):
                self.failures.clear(peer)
                return sasl.LoggedIn(self.local_user(step.user))
            else:
                if isinstance(step, sasl.SaslError) and step.failure is sasl.Failure.REJECTED:
                    await self.record_failure(peer)
                return step
