"""Server configuration: defaults, a TOML file, and command-line flags over it.

Every limit is a named field with a safe default and a one-line reason. ``Config`` is frozen;
``dataclasses.replace`` makes variants (the CLI and the pytest fixture do). ``load_config``
checks every key against the fields' types (``config_fields``) and the impossible values below,
so a mistake is one ``ConfigError`` line naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mailsrv.cluster.rendezvous import check_backends
from mailsrv.config_fields import ConfigError as ConfigError
from mailsrv.config_fields import check_table, show, unknown_key
from mailsrv.scan.settings import ScanSettings, settings_problem
from mailsrv.store.watch_mode import POLL_SECONDS, WatchMode

#: The standard port of each service; ``port_offset`` is added to all but http.
STANDARD_PORTS: dict[str, int] = {
    "smtp": 25,
    "submission": 587,
    "smtps": 465,
    "pop3": 110,
    "pop3s": 995,
    "imap": 143,
    "imaps": 993,
    "lmtp": 24,
}
DEV_PORT_OFFSET = 3000
DEFAULT_HTTP_PORT = 8025

Pop3DeleteMode = Literal["expunge", "flag", "trash"]
#: The servers mailsrv can present itself as (``mailsrv.personas.catalog``; ``mailsrv personas``).
PersonaName = Literal["mailsrv", "gmail", "outlook", "icloud", "dovecot", "greenmail", "rev1"]


def _default_watch() -> WatchMode:
    # inotify is Linux's; the store falls back to polling (logged) where libc lacks it.
    return "inotify" if sys.platform.startswith("linux") else "poll"


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits; each protects the server from one kind of abuse or accident."""

    #: POP3 command line (RFC 2449 §4 allows 255 octets incl. CRLF).
    pop3_line: int = 255
    #: IMAP command line outside literals; long UID sets from real clients stay well below.
    imap_line: int = 64 * 1024
    #: One IMAP literal / APPEND / SMTP message (also APPENDLIMIT and SMTP SIZE).
    message_size: int = 50 * 1024 * 1024
    #: Connections in total, over every listener.
    connections_total: int = 20_000
    #: Connections from one client address (loopback is exempt when ``dev``).
    connections_per_ip: int = 200
    #: Failed logins before a connection is closed.
    auth_failures_per_connection: int = 3
    #: Failed logins per address before it is refused for ``auth_block_seconds``.
    auth_failures_per_ip: int = 20
    auth_block_seconds: float = 300.0
    #: Delay before answering a failed login (grows with the failures of that address).
    auth_failure_delay: float = 1.0
    #: Seconds of silence before login (RFC 3501 and RFC 1939 both allow closing idle peers).
    preauth_timeout: float = 60.0
    #: Seconds idle after login: POP3 (RFC 1939 §3 says at least 10 minutes).
    pop3_idle_timeout: float = 600.0
    #: Seconds idle after login: IMAP (RFC 3501 §5.4 says at least 30 minutes).
    imap_idle_timeout: float = 1800.0
    #: Seconds SMTP waits for the next command (RFC 5321 §4.5.3.2.7 says at least 5 minutes).
    smtp_timeout: float = 300.0
    #: Bytes queued for a client that does not read before it is cut off.
    output_buffer: int = 4 * 1024 * 1024
    #: Malformed commands in a row before the server gives up on a connection.
    bad_commands: int = 20
    #: Seconds a session may take to finish its command when the server stops (then goodbye).
    shutdown_grace: float = 5.0
    #: Default quota per user (RFC 9208): octets over all folders, and messages; 0 = none.
    #: The users file overrides them per user (``userdb_quota_rule=*:storage=1G``).
    quota_storage: int = 0
    quota_messages: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port_offset: int = 0
    #: Explicit port per service; overrides ``port_offset`` (0 = ephemeral, -1 = off).
    ports: dict[str, int] = field(default_factory=dict)
    http_port: int = DEFAULT_HTTP_PORT
    http_enabled: bool = True
    #: Token the web console and REST API require when not on loopback or not in dev mode.
    http_token: str | None = None
    maildir: Path = Path("var/mail")
    users_file: Path | None = None
    certs_dir: Path = Path("certs")
    hostnames: tuple[str, ...] = ()
    dev: bool = False
    ready_file: Path | None = None
    loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    #: Accept USER/PASS, LOGIN, AUTH PLAIN without TLS from non-loopback peers.
    allow_plaintext_auth: bool = False
    #: TLS listeners (pop3s, imaps, smtps) and STARTTLS/STLS.
    tls: bool = True
    trace: bool = False
    trace_file: Path | None = None
    log_level: str = "INFO"
    #: "text" for people, "json" for log collectors (one object per line, ``log_format.py``).
    log_format: Literal["text", "json"] = "text"
    pop3_delete: Pop3DeleteMode = "expunge"
    pop3_lock_session: bool = False
    pop3_retr_sets_seen: bool = True
    limits: Limits = field(default_factory=Limits)
    #: "inotify": other processes' changes reach sessions in milliseconds (Linux); "poll":
    #: every ``poll_interval`` seconds (network file systems, where inotify sees no other host).
    watch: WatchMode = field(default_factory=_default_watch)
    #: Seconds between two looks at the watched folders when polling.
    poll_interval: float = POLL_SECONDS
    #: A UNIX socket for LMTP besides (or, with ``ports.lmtp = -1``, instead of) its TCP port.
    lmtp_socket: Path | None = None
    #: Name shown in greetings and Received: headers.
    server_name: str = "localhost"
    #: ``[scan]``: spam and virus checks at delivery (off unless an engine is named).
    scan: ScanSettings = field(default_factory=ScanSettings)
    #: The hosts sharing this Maildir root behind nginx's mail proxy, as IP addresses (this
    #: host's ``host`` among them): ``GET /auth/nginx`` sends each user to one of them, and each
    #: of them keeps a heartbeat in the root (``mailsrv.cluster``). Empty: one host.
    cluster_backends: tuple[str, ...] = ()
    #: Present IMAP as this server does: capabilities, greeting, ID, folders, size limit.
    persona: PersonaName = "mailsrv"

    def port_for(self, service: str) -> int | None:
        """The port to bind for ``service``: None when it is off, 0 for an ephemeral one."""
        if service == "http":
            return self.http_port if self.http_enabled else None
        port = self.ports.get(service)
        if port is None:
            port = STANDARD_PORTS[service] + self.port_offset
        if port < 0 or (not self.tls and service in ("pop3s", "imaps", "smtps")):
            return None
        return port

    def with_ephemeral_ports(self) -> Config:
        """Every service on port 0 (the test fixture and ``--ephemeral``)."""
        ports = {name: 0 for name in STANDARD_PORTS}
        return dataclasses.replace(self, ports=ports, http_port=0 if self.http_enabled else -1)


#: Longest poll interval accepted: past a minute, sessions would seem to miss mail.
MAX_POLL_INTERVAL = 60.0
MAX_PORT = 65535
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _poll_interval(value: float) -> str | None:
    if not 0 < value <= MAX_POLL_INTERVAL:
        return f"must be more than 0 and at most {MAX_POLL_INTERVAL:g}"
    return None


def _port_offset(value: int) -> str | None:
    highest = MAX_PORT - max(STANDARD_PORTS.values())
    if not 0 <= value <= highest:
        return f"must be between 0 and {highest} (the ports must stay at most {MAX_PORT})"
    return None


def _log_level(value: str) -> str | None:
    return None if value.upper() in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


#: Words for a type that say more than its annotation.
_EXPECTED = {"poll_interval": "a number of seconds", "scan.timeout": "a number of seconds"}

#: Checks of single values beyond their type: a text saying why the value is impossible.
_VALUE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "poll_interval": _poll_interval,
    "port_offset": _port_offset,
    "log_level": _log_level,
    "cluster_backends": check_backends,
}


def _check_values(kwargs: dict[str, Any], origin: dict[str, str | None]) -> None:
    """Impossible values: each key's own check, negative limits, ports, files and folders."""
    for key, value in kwargs.items():
        where = origin.get(key)
        check = _VALUE_CHECKS.get(key)
        problem = check(value) if check is not None else None
        if problem is not None:
            raise ConfigError(f"{key} {problem}, got {show(value)}", where=where, key=key)
        if isinstance(value, Path):
            _check_path(key, value, where)
    limits = kwargs.get("limits")
    if isinstance(limits, Limits):
        for f in dataclasses.fields(Limits):
            number = getattr(limits, f.name)
            if isinstance(number, int | float) and number < 0:
                raise ConfigError(
                    f"limits.{f.name} must not be negative, got {show(number)}",
                    where=origin.get("limits"),
                    key=f"limits.{f.name}",
                )
    scan = kwargs.get("scan")
    scan_problem = settings_problem(scan) if isinstance(scan, ScanSettings) else None
    if scan_problem is not None:
        name, why = scan_problem
        key, value = f"scan.{name}", show(getattr(scan, name))
        raise ConfigError(f"{key} {why}, got {value}", where=origin.get("scan"), key=key)
    for name, port in kwargs.get("ports", {}).items():
        key = f"ports.{name}"
        if name not in STANDARD_PORTS:
            raise unknown_key(key, STANDARD_PORTS, origin.get("ports"))
        if not -1 <= port <= MAX_PORT:
            raise ConfigError(
                f"{key} must be -1 (off), 0 (any free port) or a port up to {MAX_PORT}, got {port}",
                where=origin.get("ports"),
                key=key,
            )


def _check_path(key: str, path: Path, where: str | None) -> None:
    """A folder key (``maildir``, ``*_dir``) must not name a file, a file key not a folder."""
    wants_dir = key == "maildir" or key.endswith("_dir")
    if wants_dir and path.exists() and not path.is_dir():
        raise ConfigError(f"{key} {show(path)} is a file, not a directory", where=where, key=key)
    if not wants_dir and path.is_dir():
        raise ConfigError(f"{key} {show(path)} is a directory, not a file", where=where, key=key)


def _check_ports(config: Config, origin: dict[str, str | None]) -> None:
    for name in (*STANDARD_PORTS, "http"):
        port = config.port_for(name)
        if port is not None and not 0 <= port <= MAX_PORT:
            key = "http_port" if name == "http" else "port_offset"
            if name in config.ports:
                key = f"ports.{name}"
            raise ConfigError(
                f"the {name} port would be {port}, over {MAX_PORT}"
                if port > MAX_PORT
                else f"the {name} port would be {port}: use -1 with http_enabled = false for off",
                where=origin.get(key.split(".")[0]),
                key=key,
            )


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only a server started with a config file reads TOML

    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config {path}: not UTF-8 text ({exc.reason})") from exc


def load_config(path: Path | None = None, **overrides: Any) -> Config:
    """Defaults, then the TOML file (top-level keys and a ``[limits]`` table), then overrides.

    Every key is checked against ``Config``'s fields (``config_fields``): a wrong type, an
    unknown key or an impossible value raises ``ConfigError`` with one line naming the key and,
    for a file, ``config FILE``. Overrides that are None are "not given" (unset flags).
    ``dev = true`` turns on the dev defaults (port offset 3000 unless given, plaintext allowed).
    """
    kwargs: dict[str, Any] = {}
    origin: dict[str, str | None] = {}
    if path is not None:
        where = f"config {path}"
        from_file = check_table(Config, _read_toml(path), where, expected=_EXPECTED)
        kwargs.update(from_file)
        origin.update(dict.fromkeys(from_file, where))
    given = {k: v for k, v in overrides.items() if v is not None}
    from_flags = check_table(Config, given, expected=_EXPECTED)
    kwargs.update(from_flags)
    origin.update(dict.fromkeys(from_flags, None))
    if kwargs.get("dev"):
        kwargs.setdefault("port_offset", DEV_PORT_OFFSET)
        kwargs.setdefault("allow_plaintext_auth", True)
    _check_values(kwargs, origin)
    config = dataclasses.replace(Config(), **kwargs)
    _check_ports(config, origin)
    return config
