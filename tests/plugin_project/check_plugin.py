"""A user's tests: nothing but ``pip install mailsrv`` and the fixtures it brings."""

import asyncio
import smtplib

import pytest

import mailsrv.pytest_plugin


def send(host, port, to, subject="Hello"):
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.sendmail("app@example.com", [to], f"Subject: {subject}\r\n\r\nbody\r\n")


def test_plugin_came_from_the_installed_package(request):
    assert request.config.pluginmanager.get_plugin("mailsrv") is mailsrv.pytest_plugin
    assert "site-packages" in mailsrv.pytest_plugin.__file__


def test_mail_server(mail_server):
    send(mail_server.host, mail_server.ports.smtp, "alice@localhost")
    [msg] = mail_server.wait_for_messages("alice", 1)
    assert msg.subject == "Hello"


@pytest.mark.asyncio
@pytest.mark.mail_server(users={"bob": "pw"}, dev=False)
async def test_mail_server_async(mail_server_async):
    assert mail_server_async.config.dev is False
    await asyncio.to_thread(
        send, mail_server_async.host, mail_server_async.ports.smtp, "bob@localhost"
    )
    [msg] = await mail_server_async.wait_for_messages("bob", 1)
    assert msg.sender is None and msg.subject == "Hello"


def test_session_server_first(mail_server_session):
    mail_server_session.deliver("carol", "Subject: left behind\n\nx\n")


def test_session_server_is_reset(mail_server_session):
    assert mail_server_session.messages("carol") == []


class TestProjectConfig:
    @pytest.fixture
    def mail_server_config(self):
        return {"pop3_delete": "trash", "services": {"smtp", "pop3"}}

    def test_config_fixture(self, mail_server):
        assert mail_server.config.pop3_delete == "trash"
        assert mail_server.ports.pop3 and mail_server.ports.imap is None
