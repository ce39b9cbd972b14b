"""``GET /auth/nginx`` on a real server (127.0.0.2, one of two hosts), asked as nginx asks:
the token, the password check and its counters, and routing to the live host of a user."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mailsrv.cluster import routing
from mailsrv.cluster.heartbeat import beat_path, write_beat
from mailsrv.config import Limits
from mailsrv.server import MailServer
from tests.cluster_hosts import HOSTS, free_ports, require_hosts, users_of
from tests.conftest import server_config

pytestmark = pytest.mark.timeout(60)

TOKEN = "cluster-token"
HOST_A, HOST_B = HOSTS


@pytest.fixture
async def host_a(tmp_path: Path, certs_dir: Path) -> AsyncIterator[MailServer]:
    require_hosts()
    imap, pop3, smtp = free_ports(3)
    users = users_of(HOST_A, 2) + users_of(HOST_B, 2)
    (tmp_path / "users").write_text("".join(f"{u}:{{PLAIN}}pw-{u}\n" for u in users))
    config = server_config(
        tmp_path,
        certs_dir,
        services={"http"},
        dev=False,
        host=HOST_A,
        http_token=TOKEN,
        cluster_backends=HOSTS,
        limits=Limits(auth_failure_delay=0.0, auth_failures_per_ip=5),
    )
    ports = dict(config.ports, imap=imap, pop3=pop3, smtp=smtp)
    async with MailServer(dataclasses.replace(config, ports=ports)) as server:
        yield server


def nginx_headers(user: str, password: str, protocol: str = "imap", **extra: str) -> dict[str, str]:
    return {
        "Auth-Method": "plain",
        "Auth-User": user,
        "Auth-Pass": password,
        "Auth-Protocol": protocol,
        "Auth-Login-Attempt": "1",
        "Client-IP": "192.0.2.9",
        "X-Mailsrv-Token": TOKEN,
        **extra,
    }


async def ask(server: MailServer, headers: dict[str, str]) -> tuple[int, dict[str, str], int]:
    url = f"http://{HOST_A}:{server.ports.http}/auth/nginx"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        raw = sum(len(k) + len(v) + 4 for k, v in resp.raw_headers) + 20
        await resp.read()
        return resp.status, {k: v for k, v in resp.headers.items() if k.startswith("Auth-")}, raw


async def test_the_token_is_required(host_a: MailServer) -> None:
    user = users_of(HOST_A, 1)[0]
    headers = nginx_headers(user, f"pw-{user}")
    del headers["X-Mailsrv-Token"]
    status, answer, _ = await ask(host_a, headers)
    assert status == 401 and "token" in answer["Auth-Status"]
    status, _, _ = await ask(host_a, {**headers, "X-Mailsrv-Token": "wrong"})
    assert status == 401
    status, answer, _ = await ask(host_a, {**headers, "Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and answer["Auth-Status"] == "OK"


async def test_a_user_goes_to_its_host_on_the_protocol_port(host_a: MailServer) -> None:
    cfg = host_a.config
    for protocol in ("imap", "pop3", "smtp"):
        user = users_of(HOST_A, 1)[0]
        status, answer, size = await ask(host_a, nginx_headers(user, f"pw-{user}", protocol))
        assert status == 200
        assert answer == {
            "Auth-Status": "OK",
            "Auth-Server": HOST_A,
            "Auth-Port": str(cfg.port_for(protocol)),
        }
        assert size < 1024  # nginx reads at most 1 KiB of answer


async def test_users_of_a_host_that_is_down_go_to_the_other(
    host_a: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routing, "CHECK_TTL", 0.0)
    user = users_of(HOST_B, 1)[0]
    port = host_a.config.port_for("imap")
    assert port
    # 127.0.0.3 has neither a heartbeat nor a listener: down.
    _, answer, _ = await ask(host_a, nginx_headers(user, f"pw-{user}"))
    assert answer["Auth-Server"] == HOST_A
    # A heartbeat alone is not enough: its port must answer too.
    root = host_a.config.maildir
    write_beat(root, HOST_B, {})
    _, answer, _ = await ask(host_a, nginx_headers(user, f"pw-{user}"))
    assert answer["Auth-Server"] == HOST_A
    # Up: the user goes home.
    other = await asyncio.start_server(lambda r, w: w.close(), HOST_B, port)
    try:
        _, answer, _ = await ask(host_a, nginx_headers(user, f"pw-{user}"))
        assert answer["Auth-Server"] == HOST_B
        beat_path(root, HOST_B).unlink()  # its heartbeat stops: away again
        _, answer, _ = await ask(host_a, nginx_headers(user, f"pw-{user}"))
        assert answer["Auth-Server"] == HOST_A
    finally:
        other.close()
        await other.wait_closed()


async def test_a_wrong_password_counts_like_a_direct_login(host_a: MailServer) -> None:
    user = users_of(HOST_A, 1)[0]
    status, answer, _ = await ask(host_a, nginx_headers(user, "wrong"))
    assert status == 200
    assert answer["Auth-Status"] == "Authentication failed."
    assert answer["Auth-Wait"] == "1"  # nginx waits, then lets the client try again
    assert "Auth-Server" not in answer
    # The last try of a connection (limits.auth_failures_per_connection): nginx closes it.
    _, answer, _ = await ask(host_a, nginx_headers(user, "wrong", **{"Auth-Login-Attempt": "3"}))
    assert "Auth-Wait" not in answer
    # SMTP's refusal carries its reply code.
    _, answer, _ = await ask(host_a, nginx_headers(user, "wrong", "smtp"))
    assert answer["Auth-Error-Code"].startswith("535")
    # Past limits.auth_failures_per_ip the address is blocked, for nginx as for a direct login.
    for _ in range(2):
        await ask(host_a, nginx_headers(user, "wrong"))
    _, answer, _ = await ask(host_a, nginx_headers(user, f"pw-{user}"))
    assert answer["Auth-Status"] == "Too many failed logins from your address"
    assert host_a.context.auth.blocked("192.0.2.9")
    # Another client address is not.
    _, answer, _ = await ask(
        host_a, nginx_headers(user, f"pw-{user}", **{"Client-IP": "192.0.2.10"})
    )
    assert answer["Auth-Status"] == "OK"


async def test_bad_requests_and_methods(host_a: MailServer) -> None:
    user = users_of(HOST_A, 1)[0]
    status, answer, _ = await ask(host_a, nginx_headers(user, "pw", "nntp"))
    assert status == 400 and "Auth-Protocol" in answer["Auth-Status"]
    extra: dict[str, Any] = {"Auth-Method": "cram-md5", "Auth-Salt": "<1.2@x>"}
    _, answer, _ = await ask(host_a, nginx_headers(user, "digest", **extra))
    assert "not offered" in answer["Auth-Status"]
    # SMTP without AUTH (smtp_auth none): any live host delivers.
    smtp = nginx_headers("", "", "smtp", **{"Auth-Method": "none", "Auth-SMTP-To": "<x@y>"})
    _, answer, _ = await ask(host_a, smtp)
    assert answer["Auth-Status"] == "OK" and answer["Auth-Server"] == HOST_A


async def test_the_heartbeat_lives_with_the_server(tmp_path: Path, certs_dir: Path) -> None:
    require_hosts()
    config = server_config(
        tmp_path, certs_dir, services={"imap"}, host=HOST_A, cluster_backends=HOSTS
    )
    path = beat_path(config.maildir, HOST_A)
    async with MailServer(config) as server:
        assert path.exists()
        assert await server.store.list_users() == []  # the cluster directory is no user
    assert not path.exists()


async def test_a_failure_inside_is_a_clean_refusal(
    host_a: MailServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(key: str, port: int) -> str | None:
        raise OSError("the shared filesystem is gone")

    monkeypatch.setattr(routing.Router, "pick", lambda self, key, port: broken(key, port))
    user = users_of(HOST_A, 1)[0]
    status, answer, _ = await ask(host_a, nginx_headers(user, f"pw-{user}"))
    assert status == 200
    assert answer == {"Auth-Status": "Temporary failure, try again later"}
    assert "the shared filesystem is gone" in caplog.text  # in the log, not in the answer
