"""mailsrv.testing without a server: options to Config, messages in and out, fault rules."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from mailsrv.config import Config, Limits
from mailsrv.faults import DEFAULT_REPLIES, FaultInjector, FaultKind
from mailsrv.testing import (
    TEST_LIMITS,
    StoredMessage,
    build_config,
    config_overrides,
    message_bytes,
    process_certs_dir,
)

# -- build_config -------------------------------------------------------------------------------


def test_defaults_are_for_tests(tmp_path: Path) -> None:
    opts = build_config(tmp_path)
    cfg = opts.config
    assert cfg.host == "127.0.0.1"
    assert cfg.dev and cfg.allow_plaintext_auth and cfg.tls
    assert cfg.maildir == tmp_path / "mail"
    assert cfg.users_file == tmp_path / "users"
    assert cfg.limits == TEST_LIMITS and cfg.limits.auth_failure_delay == 0
    for name in ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps"):
        assert cfg.port_for(name) == 0, name
    assert cfg.port_for("http") is None
    assert opts.users == {} and opts.store == "maildir"


def test_certs_come_from_one_process_ca(tmp_path: Path) -> None:
    first = build_config(tmp_path).config.certs_dir
    assert first == process_certs_dir() == build_config(tmp_path / "x").config.certs_dir
    assert (first / "ca.pem").exists() and (first / "server.pem").exists()


def test_services_pick_listeners(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, services={"smtp", "imap", "http"}).config
    on = {n for n in ("smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps", "http")}
    assert {n for n in on if cfg.port_for(n) is not None} == {"smtp", "imap", "http"}
    assert cfg.port_for("http") == 0


def test_http_flag_adds_the_console(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, http=True).config
    assert cfg.port_for("http") == 0 and cfg.port_for("imap") == 0


def test_unknown_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown services: gopher"):
        build_config(tmp_path, services={"gopher", "smtp"})


def test_config_fields_and_extras(tmp_path: Path) -> None:
    opts = build_config(
        tmp_path,
        users={"alice": "pw"},
        dev=False,
        tls=False,
        pop3_delete="flag",
        store="memory",
        maildir=str(tmp_path / "elsewhere"),
        hostnames=["mail.test"],
    )
    cfg = opts.config
    assert (cfg.dev, cfg.tls, cfg.pop3_delete) == (False, False, "flag")
    assert cfg.maildir == tmp_path / "elsewhere" and cfg.hostnames == ("mail.test",)
    assert cfg.port_for("imaps") is None  # no TLS, no implicit-TLS ports
    assert opts.users == {"alice": "pw"} and opts.store == "memory"


def test_limits_dict_merges_over_test_limits(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, limits={"message_size": 1000}).config
    assert cfg.limits.message_size == 1000
    assert cfg.limits.auth_failure_delay == 0  # still the test default
    whole = Limits(message_size=5)
    assert build_config(tmp_path, limits=whole).config.limits is whole


def test_bad_options_say_what_is_known(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"unknown mail server option\(s\): colour.*pop3_delete"):
        build_config(tmp_path, colour="blue")
    with pytest.raises(TypeError, match="unknown limits: speed"):
        build_config(tmp_path, limits={"speed": 1})
    with pytest.raises(TypeError, match="store is 'maildir' or 'memory'"):
        build_config(tmp_path, store="redis")


def test_explicit_ports_and_offset(tmp_path: Path) -> None:
    cfg = build_config(tmp_path, ports={"smtp": 2525}).config
    assert cfg.port_for("smtp") == 2525 and cfg.port_for("imap") == 0
    cfg = build_config(tmp_path, port_offset=3000).config
    assert cfg.port_for("imap") == 3143


def test_config_overrides_keeps_only_changes() -> None:
    assert config_overrides(Config()) == {}
    assert config_overrides(Config(pop3_delete="trash", dev=True)) == {
        "pop3_delete": "trash",
        "dev": True,
    }


# -- messages -----------------------------------------------------------------------------------

RAW = (
    b"From: Bob <bob@example.com>\r\n"
    b"To: alice@localhost, Carol <carol@example.com>\r\n"
    b"Cc: dave@example.com\r\n"
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
    b"\r\n"
    b"hello\r\n"
)


def test_stored_message_parses() -> None:
    msg = StoredMessage(3, frozenset({"\\Seen"}), RAW)
    assert msg.subject == "café"
    assert msg.sender == "bob@example.com"
    assert msg.recipients == ["alice@localhost", "carol@example.com", "dave@example.com"]
    assert msg.text == "hello\n"
    assert msg.message["To"].addresses[1].display_name == "Carol"


def test_stored_message_without_headers() -> None:
    msg = StoredMessage(1, frozenset(), b"\r\njust a body\r\n")
    assert (msg.subject, msg.sender, msg.recipients) == (None, None, [])
    assert msg.text == "just a body\n"


def test_multipart_text_is_the_plain_part() -> None:
    em = EmailMessage()
    em["Subject"] = "two parts"
    em.set_content("plain words")
    em.add_alternative("<p>html words</p>", subtype="html")
    msg = StoredMessage(1, frozenset(), message_bytes(em))
    assert msg.text.strip() == "plain words"


def test_message_bytes_accepts_three_forms() -> None:
    em = EmailMessage()
    em["Subject"] = "x"
    em.set_content("From the start\n")  # a line beginning "From " must not be mangled
    data = message_bytes(em)
    assert b"\r\nFrom the start\r\n" in data
    assert message_bytes("Subject: é\n\nhi") == "Subject: é\n\nhi".encode()
    assert message_bytes(b"raw") == b"raw"
    with pytest.raises(TypeError, match=r"bytes, str or email\.message\.Message"):
        message_bytes(42)  # type: ignore[arg-type]


# -- faults -------------------------------------------------------------------------------------


def test_fault_fires_the_given_times() -> None:
    faults = FaultInjector()
    fault = faults.fail("IMAP", "fetch", "NO [UNAVAILABLE] try later", times=2)
    assert faults.check("imap", "NOOP") is None
    assert faults.check("imap", "FETCH") is fault and fault.kind is FaultKind.FAIL
    assert faults.check("imap", "fetch") is fault
    assert faults.check("imap", "FETCH") is None
    assert fault.hits == 2 and faults.active == []


def test_fault_forever_and_wildcard_and_remove() -> None:
    faults = FaultInjector()
    fault = faults.delay("pop3", "*", 0.5, times=None)
    for cmd in ("USER", "RETR", "QUIT"):
        assert faults.check("pop3", cmd) is fault
    assert faults.check("imap", "FETCH") is None
    faults.remove(fault)
    faults.remove(fault)  # already gone: no error
    assert faults.check("pop3", "RETR") is None


def test_drop_keeps_after_bytes_and_uid_commands_match() -> None:
    faults = FaultInjector()
    fault = faults.drop("imap", "uid  fetch", after_bytes=10)
    assert faults.check("imap", "UID FETCH") is fault and fault.after_bytes == 10


def test_default_replies_and_clear() -> None:
    faults = FaultInjector()
    for proto in ("imap", "pop3", "smtp"):
        assert faults.fail(proto, "X").reply == DEFAULT_REPLIES[proto]
    faults.clear()
    assert faults.active == []


@pytest.mark.parametrize(
    ("proto", "reply", "message"),
    [
        ("imap", "* BYE", "IMAP status"),
        ("imap", "NO fine\r\n* 1 EXISTS", "one line"),
        ("pop3", "ERR x", "POP3 status"),
        ("smtp", "hello", "SMTP reply"),
        ("smtp", "99 x", "SMTP reply"),
    ],
)
def test_fail_reply_must_fit_the_protocol(proto: str, reply: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultInjector().fail(proto, "CMD", reply)


def test_fault_arguments_are_checked() -> None:
    faults = FaultInjector()
    with pytest.raises(ValueError, match="imap, pop3, smtp"):
        faults.fail("gopher", "X")
    with pytest.raises(ValueError, match="imap, pop3, smtp"):
        faults.drop("http", "GET")
    with pytest.raises(ValueError, match="positive count"):
        faults.fail("imap", "FETCH", times=0)
    with pytest.raises(ValueError, match="zero seconds or more"):
        faults.delay("imap", "FETCH", -1)
    with pytest.raises(ValueError, match="command name"):
        faults.drop("pop3", " ")
    with pytest.raises(ValueError, match="after_bytes"):
        faults.drop("pop3", "RETR", after_bytes=-5)
