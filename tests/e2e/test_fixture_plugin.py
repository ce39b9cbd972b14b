"""The pytest plugin as a user's project sees it: each fixture, the marker, config overrides,
the session fixture's reset, and transcripts in failure reports (run in pytester projects).
"""

from __future__ import annotations

import importlib.util

import pytest

pytest_plugins = ["pytester"]

SERVER_MODULES = (
    "mailsrv.tls",
    "mailsrv.smtp.ingress",
    "mailsrv.store.maildir",
    "mailsrv.pop3.listener",
    "mailsrv.imap.listener",
    "uvloop",
    # tls.py imports these inside its functions: a copy made during a pytester run and then
    # dropped would leave cryptography's Rust bindings checking against another class.
    "cryptography.x509",
    "cryptography.x509.oid",
    "cryptography.exceptions",
    "cryptography.hazmat.primitives.hashes",
    "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.ec",
)
HAS_ALL_LISTENERS = all(importlib.util.find_spec(m) is not None for m in SERVER_MODULES)

# pytester's in-process runs drop the modules a run imported; importing the server's modules
# (cryptography's bindings above all) here keeps one copy of each for every run.
for _name in SERVER_MODULES:
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name)

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
addopts = --strict-markers
"""

# Only SMTP and the in-memory store: these tests are about the plugin, not the listeners.
CONFTEST = """
import pytest

@pytest.fixture
def mail_server_config():
    return {"services": {"smtp"}, "store": "memory", "pop3_delete": "flag"}

@pytest.fixture(scope="session")
def mail_server_session_config():
    return {"services": {"smtp"}, "store": "memory"}
"""

SEND = """
import smtplib

def send(server, to="alice@localhost", subject="Hello"):
    with smtplib.SMTP(server.host, server.ports.smtp, timeout=10) as client:
        client.sendmail("bob@example.com", [to], f"Subject: {subject}\\r\\n\\r\\nhi\\r\\n")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(sendmail=SEND)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The plugin's package was imported by this outer session, so the inner one cannot
    # rewrite its asserts: expected here, and not what a user's run would see.
    quiet = ("-W", "ignore::pytest.PytestAssertRewriteWarning")
    return pytester.runpytest("-p", "no:cacheprovider", *quiet, *args)


def test_each_fixture_gives_a_fresh_working_server(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fixtures="""
        import asyncio
        from mailsrv.testing import AsyncMailServer, ThreadedMailServer
        from sendmail import send

        seen_ports = []

        def test_sync(mail_server):
            assert isinstance(mail_server, ThreadedMailServer)
            send(mail_server)
            assert mail_server.wait_for_messages("alice", 1)[0].subject == "Hello"
            seen_ports.append(mail_server.ports.smtp)

        def test_sync_again_is_empty(mail_server):
            assert mail_server.messages("alice") == []
            assert mail_server.config.pop3_delete == "flag"  # from the conftest override

        async def test_sync_fixture_in_async_test(mail_server):
            await asyncio.to_thread(send, mail_server)
            assert len(await mail_server.aio.wait_for_messages("alice", 1)) == 1

        async def test_async(mail_server_async):
            assert isinstance(mail_server_async, AsyncMailServer)
            await asyncio.to_thread(send, mail_server_async, "bob@localhost")
            [msg] = await mail_server_async.wait_for_messages("bob", 1)
            assert msg.subject == "Hello"
            assert mail_server_async.context.store.subscribe("bob") is not None

        def test_server_stopped_after_its_test():
            import socket
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", seen_ports[0])) != 0
        """
    )
    result = run(project)
    result.assert_outcomes(passed=5)


def test_marker_overrides_config_closest_wins(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_marker="""
        import pytest
        from mailsrv import Config

        pytestmark = pytest.mark.mail_server(pop3_delete="trash", dev=False)

        @pytest.mark.mail_server(users={"alice": "pw"}, limits={"message_size": 1234})
        def test_function_marker(mail_server):
            cfg = mail_server.config
            assert (cfg.dev, cfg.pop3_delete) == (False, "trash")
            assert cfg.limits.message_size == 1234 and cfg.limits.auth_failure_delay == 0
            assert mail_server.context.auth.known("alice")
            assert not mail_server.context.auth.known("bob")

        @pytest.mark.mail_server(dev=True)
        class TestClass:
            @pytest.mark.mail_server(pop3_delete="expunge")
            def test_closest_wins(self, mail_server):
                assert (mail_server.config.dev, mail_server.config.pop3_delete) == (
                    True, "expunge")

            @pytest.mark.mail_server(tls=False)
            async def test_async_gets_markers_too(self, mail_server_async):
                assert mail_server_async.config.tls is False
                assert mail_server_async.ports.smtps is None
        """
    )
    result = run(project)
    result.assert_outcomes(passed=3)


def test_config_fixture_may_return_a_config(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_cfg="""
        import pytest
        from mailsrv import Config

        @pytest.fixture
        def mail_server_config():
            return Config(pop3_delete="trash", tls=False, ports={"pop3": -1, "imap": -1})

        @pytest.mark.mail_server(store="memory", services={"smtp"})
        def test_it(mail_server):
            assert mail_server.config.pop3_delete == "trash"
            assert mail_server.ports.smtp and mail_server.ports.smtp != 25  # still ephemeral
            assert mail_server.config.dev  # the test default, Config() did not change it
        """
    )
    run(pytester).assert_outcomes(passed=1)


def test_bad_configuration_is_a_clear_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.mail_server(colour="blue")
        def test_unknown_option(mail_server):
            pass

        class TestBadFixture:
            @pytest.fixture
            def mail_server_config(self):
                return ["not", "options"]

            def test_bad_config_fixture(self, mail_server_async):
                pass
        """
    )
    result = run(project)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*mail server configuration: unknown mail server option(s): colour; known:*",
            "*mail server configuration: mail_server_config must return a dict of options or a "
            "mailsrv.Config, not [[]'not', 'options'[]]",
        ]
    )
    out = result.stdout.str()
    assert "raise TypeError" not in out and "During handling" not in out  # just the message


def test_marker_is_registered(project: pytest.Pytester) -> None:
    result = run(project, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.mail_server(**options):*users=*"])
    assert result.ret == 0


def test_session_fixture_is_shared_and_reset(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_session="""
        import pytest
        from sendmail import send

        ports = set()

        def test_first(mail_server_session):
            ports.add(mail_server_session.ports.smtp)
            send(mail_server_session)
            mail_server_session.add_user("temp", "pw")
            mail_server_session.faults.fail("smtp", "MAIL", "451 not now")
            assert mail_server_session.wait_for_messages("alice", 1)

        @pytest.mark.mail_server(users={"carol": "pw"})
        def test_second_starts_clean(mail_server_session):
            ports.add(mail_server_session.ports.smtp)
            assert mail_server_session.messages("alice") == []
            assert not mail_server_session.context.auth.known("temp")
            assert mail_server_session.context.auth.known("carol")
            assert mail_server_session.faults.active == []
            send(mail_server_session)  # the fault was cleared
            assert len(ports) == 1

        def test_marker_users_do_not_leak(mail_server_session):
            assert not mail_server_session.context.auth.known("carol")

        @pytest.mark.mail_server(dev=False)
        def test_cannot_reconfigure(mail_server_session):
            pass
        """
    )
    result = run(project)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*can only add users to it, not set dev*"])


def test_failure_report_has_the_transcript(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_fails="""
        from sendmail import send

        def test_fails(mail_server):
            send(mail_server)
            assert mail_server.messages("bob"), "mail went to alice"

        async def test_fails_async(mail_server_async):
            import asyncio
            await asyncio.to_thread(send, mail_server_async, "zed@localhost")
            assert False
        """
    )
    result = run(project)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*- mail server transcript -*",
            "smtp-* C: RCPT TO:<alice@localhost>",
            "*- mail server transcript -*",
            "smtp-* C: RCPT TO:<zed@localhost>",
        ]
    )
    project.makeini(INI + "mail_server_transcript_lines = 0\n")
    result = run(project)
    result.assert_outcomes(failed=2)
    assert "mail server transcript" not in result.stdout.str()


@pytest.mark.skipif(not HAS_ALL_LISTENERS, reason="not every listener is there yet")
def test_defaults_run_every_service(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_defaults="""
        def test_defaults(mail_server):
            ports = mail_server.ports
            for name in ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps"):
                assert getattr(ports, name), name
            assert ports.http is None
            mail_server.deliver("alice", b"Subject: x\\r\\n\\r\\nbody\\r\\n")
            assert (mail_server.maildir / "alice").is_dir()
        """
    )
    run(pytester).assert_outcomes(passed=1)
