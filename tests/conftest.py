"""Shared fixtures: a test CA made once per session, and a real server on ephemeral ports."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mailsrv.config import Config, Limits
from mailsrv.server import MailServer


@pytest.fixture(scope="session")
def certs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mailsrv.tls import ensure_certificates

    path = tmp_path_factory.mktemp("certs")
    ensure_certificates(path)
    return path


def server_config(tmp_path: Path, certs_dir: Path, **overrides: Any) -> Config:
    """Every service on an ephemeral port, fast auth failures, a fresh Maildir."""
    limits = overrides.pop("limits", Limits(auth_failure_delay=0.0))
    base = Config(
        maildir=tmp_path / "mail",
        users_file=tmp_path / "users",
        certs_dir=certs_dir,
        dev=True,
        allow_plaintext_auth=True,
        http_enabled=False,
        limits=limits,
    ).with_ephemeral_ports()
    services = overrides.pop("services", None)
    if services is not None:
        ports = {name: (0 if name in services else -1) for name in base.ports}
        overrides["ports"] = ports
        overrides.setdefault("http_enabled", "http" in services)
        if "http" in services:
            overrides.setdefault("http_port", 0)
    return dataclasses.replace(base, **overrides)


ServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[MailServer]]


@pytest.fixture
def make_server(tmp_path: Path, certs_dir: Path) -> ServerFactory:
    """``async with make_server(services={"pop3"}, pop3_delete="flag") as server: ...``"""

    @contextlib.asynccontextmanager
    async def factory(store: Any = None, **overrides: Any) -> AsyncIterator[MailServer]:
        config = server_config(tmp_path, certs_dir, **overrides)
        async with MailServer(config, store=store) as server:
            yield server

    return factory
