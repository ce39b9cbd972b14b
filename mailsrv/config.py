"""Server configuration: defaults, a TOML file, and command-line flags over it.

Every limit is a named field with a safe default and a one-line reason. ``Config`` is frozen;
``dataclasses.replace`` makes variants (the CLI and the pytest fixture do).
"""

from __future__ import annotations

import dataclasses
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mailsrv.store.watch_mode import POLL_SECONDS, WATCH_MODES, WatchMode

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


class ConfigError(ValueError):
    pass


#: The keys whose value is a path or nothing.
_OPTIONAL_PATHS = ("users_file", "ready_file", "trace_file", "lmtp_socket")


def _coerce(name: str, value: Any, current: Any) -> Any:
    if isinstance(current, Path) or name in _OPTIONAL_PATHS:
        return None if value is None else Path(value)
    if isinstance(current, tuple):
        return tuple(value)
    return value


#: Longest poll interval accepted: past a minute, sessions would seem to miss mail.
MAX_POLL_INTERVAL = 60.0


def _poll_interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"poll_interval must be a number of seconds, not {value!r}")
    if not 0 < value <= MAX_POLL_INTERVAL:
        raise ConfigError(f"poll_interval must be more than 0 and at most {MAX_POLL_INTERVAL:g}")
    return float(value)


def load_config(path: Path | None = None, **overrides: Any) -> Config:
    """Defaults, then the TOML file (top-level keys and a ``[limits]`` table), then overrides.

    ``dev = true`` turns on the dev defaults (port offset 3000 unless given, plaintext allowed).
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
    data.update({k: v for k, v in overrides.items() if v is not None})
    base = Config()
    fields = {f.name for f in dataclasses.fields(Config)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        key = key.replace("-", "_")
        if key == "limits":
            limit_fields = {f.name for f in dataclasses.fields(Limits)}
            bad = set(value) - limit_fields
            if bad:
                raise ConfigError(f"unknown limits: {', '.join(sorted(bad))}")
            kwargs["limits"] = dataclasses.replace(base.limits, **value)
            continue
        if key not in fields:
            raise ConfigError(f"unknown config key: {key}")
        kwargs[key] = _coerce(key, value, getattr(base, key))
    if kwargs.get("dev"):
        kwargs.setdefault("port_offset", DEV_PORT_OFFSET)
        kwargs.setdefault("allow_plaintext_auth", True)
    if kwargs.get("pop3_delete", "expunge") not in ("expunge", "flag", "trash"):
        raise ConfigError("pop3_delete must be expunge, flag or trash")
    if "watch" in kwargs and kwargs["watch"] not in WATCH_MODES:
        raise ConfigError(f"watch must be inotify or poll, not {kwargs['watch']!r}")
    if "poll_interval" in kwargs:
        kwargs["poll_interval"] = _poll_interval(kwargs["poll_interval"])
    return dataclasses.replace(base, **kwargs)
