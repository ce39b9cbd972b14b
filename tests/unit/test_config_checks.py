"""The loader checks every key: types, unknown keys with a close match, impossible values."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import pytest

from mailsrv.config import Config, ConfigError, Limits, load_config
from mailsrv.config_fields import check_table, show


def error_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mailsrv.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('port_offset = "abc"\n', 'port_offset must be an integer, got "abc"'),
        ("port_offset = 1.5\n", "port_offset must be an integer, got 1.5"),
        ("port_offset = true\n", "port_offset must be an integer, got true"),
        ("host = 127\n", "host must be a string, got 127"),
        ('dev = "yes"\n', 'dev must be true or false, got "yes"'),
        ('hostnames = "mail.test"\n', 'hostnames must be a list of strings, got "mail.test"'),
        ("hostnames = [1]\n", "hostnames must be a list of strings, got [1]"),
        ("maildir = 5\n", "maildir must be a path (a string), got 5"),
        ("http_token = 5\n", "http_token must be a string, got 5"),
        ('loop = "trio"\n', 'loop must be auto, uvloop or asyncio, got "trio"'),
        ('pop3_delete = "shred"\n', 'pop3_delete must be expunge, flag or trash, got "shred"'),
        ('ports = { imap = "x" }\n', 'ports must be a table of integers, got { imap = "x" }'),
        ("limits = 5\n", "limits must be a table of limits settings, got 5"),
        ('[limits]\nmessage_size = "1M"\n', 'limits.message_size must be an integer, got "1M"'),
        ('[limits]\nsmtp_timeout = "5m"\n', 'limits.smtp_timeout must be a number, got "5m"'),
    ],
)
def test_a_wrong_type_names_key_file_and_expectation(tmp_path, text, message):
    assert error_of(tmp_path, text) == f"config {tmp_path / 'mailsrv.toml'}: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot_offset = 3000\n", "prot_offset: unknown key; did you mean port_offset?"),
        ("maildri = 'x'\n", "maildri: unknown key; did you mean maildir?"),
        ("zzz = 1\n", "zzz: unknown key"),
        (
            "[limits]\nmesage_size = 1\n",
            "limits.mesage_size: unknown key; did you mean limits.message_size?",
        ),
        ("[ports]\nimapp = 1143\n", "ports.imapp: unknown key; did you mean ports.imap?"),
    ],
)
def test_an_unknown_key_names_the_closest_known_one(tmp_path, text, message):
    assert error_of(tmp_path, text).endswith(f"mailsrv.toml: {message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port_offset = 65000\n", "port_offset must be between 0 and 64540"),
        ("port_offset = -5\n", "port_offset must be between 0 and 64540"),
        ("http_port = 70000\n", "the http port would be 70000, over 65535"),
        ("[ports]\nimap = 65536\n", "ports.imap must be -1 (off), 0 (any free port) or a port"),
        ("[ports]\nimap = -2\n", "ports.imap must be -1 (off)"),
        ("[limits]\nmessage_size = -1\n", "limits.message_size must not be negative, got -1"),
        ("[limits]\nshutdown_grace = -0.5\n", "limits.shutdown_grace must not be negative"),
        ('log_level = "LOUD"\n', "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
def test_an_impossible_value_says_why(tmp_path, text, message):
    assert message in error_of(tmp_path, text)


def test_a_maildir_root_that_is_a_file(tmp_path):
    (tmp_path / "mail").write_text("")
    message = error_of(tmp_path, f'maildir = "{tmp_path / "mail"}"\n')
    assert message.endswith(f'maildir "{tmp_path / "mail"}" is a file, not a directory')
    (tmp_path / "users").mkdir()
    message = error_of(tmp_path, f'users_file = "{tmp_path / "users"}"\n')
    assert message.endswith("is a directory, not a file")


def test_overrides_are_checked_too_without_a_file_name():
    with pytest.raises(ConfigError) as info:
        load_config(port_offset="abc")
    assert str(info.value) == 'port_offset must be an integer, got "abc"'
    assert info.value.where is None and info.value.key == "port_offset"
    with pytest.raises(ConfigError, match="did you mean http_port"):
        load_config(htp_port=1)


def test_the_error_knows_its_key_and_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[limits]\nbad_commands = -3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.where == f"config {path}"
    assert info.value.key == "limits.bad_commands"


def test_values_are_converted_to_the_field_types(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('trace_file = "t.jsonl"\nhostnames = ["a", "b"]\n[limits]\nsmtp_timeout = 60\n')
    config = load_config(path)
    assert config.trace_file == Path("t.jsonl")
    assert config.hostnames == ("a", "b")
    assert config.limits.smtp_timeout == 60.0 and isinstance(config.limits.smtp_timeout, float)
    assert config.limits == dataclasses.replace(Limits(), smtp_timeout=60.0)


def test_a_limits_instance_is_accepted_as_an_override():
    limits = Limits(bad_commands=3)
    assert load_config(limits=limits).limits is limits


def test_a_new_field_is_checked_without_code_of_its_own():
    """The table is the dataclass: a key someone adds is typed, known and suggested at once."""

    @dataclasses.dataclass(frozen=True)
    class Grown:
        lmtp_socket: Path | None = None
        lmtp_mode: Literal["inet", "unix"] = "inet"

    assert check_table(Grown, {"lmtp-socket": "var/lmtp.sock"}) == {
        "lmtp_socket": Path("var/lmtp.sock")
    }
    with pytest.raises(ConfigError, match=r"^lmtp_socket must be a path \(a string\), got 3$"):
        check_table(Grown, {"lmtp_socket": 3})
    with pytest.raises(ConfigError, match="did you mean lmtp_socket"):
        check_table(Grown, {"lmtp_sokcet": "x"})
    with pytest.raises(ConfigError, match='lmtp_mode must be inet or unix, got "tcp"'):
        check_table(Grown, {"lmtp_mode": "tcp"})


def as_toml(value: object) -> object:
    """What a TOML file would hold for ``value`` (paths are strings, tuples lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@pytest.mark.parametrize("cls", [Config, Limits])
def test_every_default_passes_its_own_check(cls):
    """Written in a file, each field's default is accepted and read back as it was."""
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if value is None or dataclasses.is_dataclass(value):
            continue
        assert check_table(cls, {f.name: as_toml(value)}) == {f.name: value}, f.name


def test_show_writes_values_as_toml():
    assert show("abc") == '"abc"'
    assert show(True) == "true"
    assert show([1, "a"]) == '[1, "a"]'
    assert show(Path("var/mail")) == '"var/mail"'
    assert show({"imap": 1}) == "{ imap = 1 }"
