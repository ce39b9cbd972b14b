"""Config: defaults, the TOML file, flag overrides, dev defaults and port selection."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mailsrv.config import (
    DEFAULT_HTTP_PORT,
    DEV_PORT_OFFSET,
    STANDARD_PORTS,
    Config,
    ConfigError,
    Limits,
    load_config,
)


def test_defaults_are_standard_ports_on_loopback():
    config = load_config()
    assert config == Config()
    assert config.host == "127.0.0.1"
    assert not config.dev and not config.allow_plaintext_auth
    assert {name: config.port_for(name) for name in STANDARD_PORTS} == STANDARD_PORTS
    assert config.port_for("http") == DEFAULT_HTTP_PORT


def test_dev_turns_on_offset_and_plaintext():
    config = load_config(dev=True)
    assert config.port_offset == DEV_PORT_OFFSET
    assert config.allow_plaintext_auth
    assert config.port_for("imap") == 3143
    assert config.port_for("smtp") == 3025
    assert config.port_for("http") == DEFAULT_HTTP_PORT, "the console port has no offset"


def test_dev_keeps_an_explicit_offset():
    assert load_config(dev=True, port_offset=10000).port_for("pop3") == 10110
    assert load_config(dev=True, port_offset=0).port_for("pop3") == 110


def test_toml_file_then_overrides(tmp_path):
    path = tmp_path / "mailsrv.toml"
    path.write_text(
        'host = "0.0.0.0"\n'
        'maildir = "/srv/mail"\n'
        'users-file = "/etc/mailsrv/users"\n'
        'hostnames = ["mail.example.test"]\n'
        'pop3_delete = "trash"\n'
        "http_port = 9000\n"
        "[ports]\nimap = 1143\npop3 = -1\n"
        "[limits]\nmessage_size = 1000\nbad_commands = 5\n"
    )
    config = load_config(path, host=None, http_port=9100)
    assert config.host == "0.0.0.0", "None means 'not given on the command line'"
    assert config.maildir == Path("/srv/mail")
    assert config.users_file == Path("/etc/mailsrv/users")
    assert config.hostnames == ("mail.example.test",)
    assert config.pop3_delete == "trash"
    assert config.http_port == 9100, "flags win over the file"
    assert config.port_for("imap") == 1143
    assert config.port_for("pop3") is None, "-1 turns a service off"
    assert config.port_for("smtp") == 25
    assert config.limits == dataclasses.replace(Limits(), message_size=1000, bad_commands=5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope = 1\n", r"bad\.toml: nope: unknown key$"),
        ("[limits]\nnope = 1\n", r"bad\.toml: limits\.nope: unknown key$"),
        ('pop3_delete = "shred"\n', "pop3_delete must be"),
        ("host = \n", "cannot read config"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml")


def test_tls_off_disables_implicit_tls_ports():
    config = load_config(tls=False)
    assert config.port_for("imaps") is None
    assert config.port_for("pop3s") is None
    assert config.port_for("smtps") is None
    assert config.port_for("imap") == 143


def test_ephemeral_ports():
    config = Config(port_offset=3000).with_ephemeral_ports()
    assert all(config.port_for(name) == 0 for name in STANDARD_PORTS)
    assert config.port_for("http") == 0
    no_http = dataclasses.replace(Config(), http_enabled=False).with_ephemeral_ports()
    assert no_http.port_for("http") is None


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().host = "0.0.0.0"  # type: ignore[misc]


def test_scan_table(tmp_path: Path) -> None:
    conf = tmp_path / "mailsrv.toml"
    conf.write_text(
        '[scan]\nspam = "spamc://127.0.0.1:783"\nvirus = "unix:/run/clamav/clamd.ctl"\n'
        "timeout = 5\nmax_size = 1000000\nconcurrency = 4\nspam_threshold = 6.5\n"
        'virus_action = "quarantine"\n'
    )
    scan = load_config(conf).scan
    assert (scan.spam, scan.virus, scan.timeout, scan.virus_action) == (
        "spamc://127.0.0.1:783",
        "unix:/run/clamav/clamd.ctl",
        5.0,
        "quarantine",
    )
    assert not load_config().scan.enabled  # off unless an engine is named
    for body, message in [
        ('spam = "clamd://127.0.0.1:3310"', 'scan.spam must be "spamc://HOST:PORT"'),
        ("timeout = 0", "scan.timeout must be more than 0"),
        ('virus_action = "drop"', "scan.virus_action must be reject or quarantine"),
        ("spam_treshold = 5", "did you mean scan.spam_threshold"),
    ]:
        conf.write_text(f"[scan]\n{body}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(conf)
