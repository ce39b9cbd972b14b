"""mailsrv in async tests: ``mail_server_async`` runs on the test's own event loop.

Needs pytest-asyncio (installed with mailsrv). Run: pytest examples/test_with_pytest_async.py
"""

from __future__ import annotations

import asyncio
import smtplib

import pytest

pytestmark = pytest.mark.asyncio


async def notify(host: str, port: int, to: str, text: str) -> None:
    """The code under test: an async application sending mail (smtplib in a worker thread)."""

    def send() -> None:
        with smtplib.SMTP(host, port) as smtp:
            message = f"From: alerts@example.com\r\nTo: {to}\r\nSubject: Alert\r\n\r\n{text}\r\n"
            smtp.sendmail("alerts@example.com", [to], message)

    await asyncio.to_thread(send)


async def test_alert_mail(mail_server_async):
    server = mail_server_async
    await notify(server.host, server.ports.smtp, "ops@localhost", "disk full")

    [msg] = await server.wait_for_messages("ops", 1)
    assert msg.subject == "Alert"
    assert msg.text == "disk full\n"


async def test_mail_is_filed_into_folders(mail_server_async):
    server = mail_server_async
    await server.deliver("ops", "Subject: old alert\n\nresolved\n", folder="Archive")

    assert "Archive" in await server.folders("ops")
    assert [m.subject for m in await server.messages("ops", "Archive")] == ["old alert"]
    assert await server.messages("ops") == []


async def test_waiting_does_not_block_the_loop(mail_server_async):
    server = mail_server_async
    waiting = asyncio.create_task(server.wait_for_messages("ops", 2))
    await notify(server.host, server.ports.smtp, "ops@localhost", "one")
    await notify(server.host, server.ports.smtp, "ops@localhost", "two")

    assert [m.text for m in await waiting] == ["one\n", "two\n"]
