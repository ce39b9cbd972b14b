"""``GET /metrics`` against a running server: real IMAP, POP3 and SMTP clients do logins (one of
each failing), commands and deliveries; prometheus-client's parser reads the answer back."""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailsrv.config import Limits
from mailsrv.server import MailServer

HOST = "127.0.0.1"
TOKEN = "metrics-token"
SERVICES = {"imap", "pop3", "submission", "http"}
MESSAGE = b"From: bob@localhost\r\nTo: ann@localhost\r\nSubject: hi\r\n\r\nhello\r\n"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server: MailServer, token: str | None = TOKEN) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://{HOST}:{server.ports.http}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    samples: Samples = {}
    kinds: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] = s.value
    return samples, kinds


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def imap_session(port: int) -> None:
    c = imaplib.IMAP4(HOST, port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error):
        c.login("ann", "wrong")
    c.login("ann", "secret")
    c.select("INBOX")
    c.noop()
    c.append("INBOX", None, None, MESSAGE)
    c.logout()


def pop3_session(port: int) -> None:
    c = poplib.POP3(HOST, port, timeout=10)
    c.user("ann")
    with pytest.raises(poplib.error_proto):
        c.pass_("wrong")
    c.user("ann")
    c.pass_("secret")
    c.stat()
    c.quit()


def smtp_session(port: int) -> None:
    with smtplib.SMTP(HOST, port, timeout=10) as c:
        c.ehlo("client.test")
        c.user, c.password = "ann", "wrong"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            c.auth("PLAIN", c.auth_plain)  # one attempt (login() would try LOGIN after it)
        c.login("ann", "secret")
        c.sendmail("ann@localhost", ["ann@localhost"], MESSAGE)


async def test_metrics_count_sessions_logins_commands_and_deliveries(make_server: Any) -> None:
    async with make_server(services=SERVICES, dev=False, http_token=TOKEN) as server:
        server.context.auth.add_user("ann", "secret")
        await server.store.ensure_user("ann")
        await asyncio.to_thread(imap_session, server.ports.imap)
        await asyncio.to_thread(pop3_session, server.ports.pop3)
        await asyncio.to_thread(smtp_session, server.ports.submission)
        url = f"http://{HOST}:{server.ports.http}/api/v1/users/ann/folders/INBOX/messages"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, data=MESSAGE, headers=headers) as r,
        ):
            assert r.status == 201
        held = await asyncio.to_thread(imaplib.IMAP4, HOST, server.ports.imap, timeout=10)
        try:
            status, ctype, text = await scrape(server)
        finally:
            await asyncio.to_thread(held.logout)
    assert status == 200, text
    assert ctype.startswith("text/plain; version=0.0.4")
    samples, kinds = parse(text)
    assert kinds["mailsrv_sessions"] == "gauge"
    assert kinds["mailsrv_command_seconds"] == "histogram"
    assert value(samples, "mailsrv_sessions", protocol="imap") == 1
    for protocol in ("imap", "pop3", "smtp"):
        assert value(samples, "mailsrv_logins_total", protocol=protocol, result="ok") == 1
        assert value(samples, "mailsrv_logins_total", protocol=protocol, result="failed") == 1
        assert value(samples, "mailsrv_received_bytes_total", protocol=protocol) > 0
        assert value(samples, "mailsrv_sent_bytes_total", protocol=protocol) > 0
        assert value(samples, "mailsrv_errors_total", protocol=protocol) == 0
    commands = {
        ("imap", "LOGIN"): 2, ("imap", "SELECT"): 1, ("imap", "NOOP"): 1, ("imap", "APPEND"): 1,
        ("imap", "LOGOUT"): 1, ("pop3", "USER"): 2, ("pop3", "PASS"): 2, ("pop3", "STAT"): 1,
        ("pop3", "QUIT"): 1, ("smtp", "EHLO"): 1, ("smtp", "AUTH"): 2, ("smtp", "MAIL"): 1,
        ("smtp", "RCPT"): 1, ("smtp", "DATA"): 1,
    }  # fmt: skip
    for (protocol, command), count in commands.items():
        got = value(samples, "mailsrv_commands_total", protocol=protocol, command=command)
        assert got == count, (protocol, command)
        labels = {"protocol": protocol, "command": command}
        assert value(samples, "mailsrv_command_seconds_count", **labels) == count
        assert value(samples, "mailsrv_command_seconds_bucket", **labels, le="+Inf") == count
        assert value(samples, "mailsrv_command_seconds_sum", **labels) > 0
    assert value(samples, "mailsrv_deliveries_total", via="smtp") == 1
    assert value(samples, "mailsrv_deliveries_total", via="imap-append") == 1
    assert value(samples, "mailsrv_deliveries_total", via="web") == 1


async def test_metrics_count_refusals(make_server: Any) -> None:
    limits = Limits(auth_failure_delay=0.0, connections_total=1)
    async with make_server(services={"imap", "http"}, http_token=TOKEN, limits=limits) as server:
        first = await asyncio.to_thread(imaplib.IMAP4, HOST, server.ports.imap, timeout=10)
        try:
            with pytest.raises(imaplib.IMAP4.error, match="too many connections"):
                await asyncio.to_thread(imaplib.IMAP4, HOST, server.ports.imap, timeout=10)
        finally:
            await asyncio.to_thread(first.logout)
        status, _, text = await scrape(server)
    assert status == 200, text
    samples, _ = parse(text)
    reason = "too_many_connections"
    assert value(samples, "mailsrv_refusals_total", protocol="imap", reason=reason) == 1


async def test_metrics_need_the_token(make_server: Any) -> None:
    async with make_server(services={"http"}, http_token=TOKEN) as server:
        assert (await scrape(server, token=None))[0] == 401
        assert (await scrape(server, token="wrong"))[0] == 401
        assert (await scrape(server))[0] == 200
