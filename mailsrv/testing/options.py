"""A test server's configuration: test defaults, the per-process test CA, ``build_config``."""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from mailsrv.config import STANDARD_PORTS, Config, Limits, PersonaName
from mailsrv.scan.settings import ScanSettings, settings_problem

#: Every service a test server can run (``services=`` picks a subset).
SERVICES: tuple[str, ...] = (*STANDARD_PORTS, "http")
#: Test defaults: failed logins answer at once and never block 127.0.0.1 for the session.
TEST_LIMITS = Limits(auth_failure_delay=0.0, auth_failures_per_ip=1_000_000)

_EXTRA_OPTIONS = ("users", "services", "http", "store")


_certs_lock = threading.Lock()
_certs_dir: Path | None = None


def process_certs_dir() -> Path:
    """A CA and server certificate made once per process in a temporary directory."""
    global _certs_dir
    with _certs_lock:
        if _certs_dir is None or not (_certs_dir / "ca.pem").exists():
            from mailsrv.tls import ensure_certificates

            path = Path(tempfile.mkdtemp(prefix="mailsrv-test-certs-"))
            ensure_certificates(path)
            atexit.register(shutil.rmtree, path, True)
            _certs_dir = path
        return _certs_dir


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """A test server's ``Config`` plus what is not config: users to create and the store kind."""

    config: Config
    users: Mapping[str, str] = field(default_factory=dict)
    store: str = "maildir"  # or "memory"


def _limits(value: Any) -> Limits:
    if value is None:
        return TEST_LIMITS
    if isinstance(value, Limits):
        return value
    if isinstance(value, Mapping):
        names = {f.name for f in dataclasses.fields(Limits)}
        bad = sorted(set(value) - names)
        if bad:
            raise TypeError(f"unknown limits: {', '.join(bad)}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(TEST_LIMITS, **value)
    raise TypeError(f"limits is a mailsrv.Limits or a dict, not {type(value).__name__}")


def _scan(value: Any) -> ScanSettings:
    if isinstance(value, Mapping):
        names = {f.name for f in dataclasses.fields(ScanSettings)}
        bad = sorted(set(value) - names)
        if bad:
            raise TypeError(f"unknown scan settings: {', '.join(bad)}; known: {sorted(names)}")
        value = ScanSettings(**value)
    if not isinstance(value, ScanSettings):
        raise TypeError(f"scan is a ScanSettings or a dict, not {type(value).__name__}")
    problem = settings_problem(value)
    if problem is not None:
        raise ValueError(f"scan {problem[0]} {problem[1]}")
    return value


def _service_ports(services: Iterable[str]) -> dict[str, Any]:
    wanted = set(services)
    unknown = sorted(wanted - set(SERVICES))
    if unknown:
        raise TypeError(f"unknown services: {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    ports = {name: (0 if name in wanted else -1) for name in STANDARD_PORTS}
    http = "http" in wanted
    return {"ports": ports, "http_enabled": http, "http_port": 0 if http else -1}


def build_config(base_dir: Path, **options: Any) -> ServerOptions:
    """The test server's configuration: defaults for tests, then ``options``.

    Defaults: 127.0.0.1, every service but http on an ephemeral port, ``dev=True`` (any password,
    mailboxes made on first use), the Maildir and users file under ``base_dir``, the per-process
    test CA, and ``TEST_LIMITS``. ``options`` are ``Config`` fields (``limits`` may be a dict of
    ``Limits`` fields, ``scan`` one of ``ScanSettings`` fields) and ``users={"alice": "pw"}``,
    ``services={"smtp", "imap"}``, ``http=True``, ``store="memory"``.
    """
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(options) - fields - set(_EXTRA_OPTIONS))
    if unknown:
        known = ", ".join(sorted(fields | set(_EXTRA_OPTIONS)))
        raise TypeError(f"unknown mail server option(s): {', '.join(unknown)}; known: {known}")
    opts = dict(options)
    persona = opts.get("persona", "mailsrv")
    if persona not in get_args(PersonaName):
        known = ", ".join(get_args(PersonaName))
        raise TypeError(f"unknown persona {persona!r}; known: {known} (mailsrv personas)")
    users = dict(opts.pop("users", None) or {})
    store = opts.pop("store", "maildir")
    if store not in ("maildir", "memory"):
        raise TypeError(f"store is 'maildir' or 'memory', not {store!r}")
    kwargs: dict[str, Any] = {
        "host": "127.0.0.1",
        "maildir": Path(base_dir) / "mail",
        "users_file": Path(base_dir) / "users",
        "dev": True,
        "allow_plaintext_auth": True,
        **_service_ports(s for s in SERVICES if s != "http"),
    }
    if "services" in opts:
        kwargs.update(_service_ports(opts.pop("services")))
    if opts.pop("http", False):
        kwargs.update(http_enabled=True, http_port=0)
    if "ports" in opts:
        kwargs["ports"] = {**kwargs["ports"], **opts.pop("ports")}
    elif "port_offset" in opts:
        kwargs.pop("ports")  # fixed ports from the offset, as the user asked
    kwargs["limits"] = _limits(opts.pop("limits", None))
    if "scan" in opts:
        kwargs["scan"] = _scan(opts.pop("scan"))
    kwargs.update(opts)
    for name in ("maildir", "users_file", "certs_dir", "ready_file", "trace_file"):
        if isinstance(kwargs.get(name), str):
            kwargs[name] = Path(kwargs[name])
    if "hostnames" in kwargs:
        kwargs["hostnames"] = tuple(kwargs["hostnames"])
    if kwargs.get("tls", True) and "certs_dir" not in kwargs:
        kwargs["certs_dir"] = process_certs_dir()
    return ServerOptions(Config(**kwargs), users, store)


def config_overrides(config: Config) -> dict[str, Any]:
    """The fields of ``config`` that differ from ``Config()``: a Config as build_config options."""
    default = Config()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(Config)
        if getattr(config, f.name) != getattr(default, f.name)
    }
