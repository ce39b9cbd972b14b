"""A wrong configuration, as a real ``mailsrv`` process sees it: exit status 2, one line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.e2e.test_cli import run


def one_error_line(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""
    return result.stderr.rstrip("\n")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            'port_offset = "abc"\n',
            'mailsrv: config var/mailsrv.toml: port_offset must be an integer, got "abc"',
        ),
        (
            "prot_offset = 3000\n",
            "mailsrv: config var/mailsrv.toml: prot_offset: unknown key; did you mean port_offset?",
        ),
        (
            "[ports]\nimap = 70000\n",
            "mailsrv: config var/mailsrv.toml: ports.imap must be -1 (off), 0 (any free port) or "
            "a port up to 65535, got 70000",
        ),
        (
            "[limits]\nconnections_per_ip = -1\n",
            "mailsrv: config var/mailsrv.toml: limits.connections_per_ip must not be negative, "
            "got -1",
        ),
        (
            'maildir = "var/afile"\n',
            'mailsrv: config var/mailsrv.toml: maildir "var/afile" is a file, not a directory',
        ),
    ],
)
@pytest.mark.parametrize("command", ["serve", "check-config"])
def test_a_mistake_in_the_file_is_one_line_and_status_2(tmp_path, text, line, command):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "afile").write_text("")
    (tmp_path / "var" / "mailsrv.toml").write_text(text)
    args = ["serve", "--config"] if command == "serve" else ["check-config"]
    assert one_error_line(run(tmp_path, *args, "var/mailsrv.toml")) == line


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ["--port-offset", "70000"],
            "mailsrv: option --port-offset: port_offset must be between 0 and 64540 (the ports "
            "must stay at most 65535), got 70000",
        ),
        (
            ["--http-port", "99999"],
            "mailsrv: option --http-port: the http port would be 99999, over 65535",
        ),
        (
            ["--log-level", "LOUD"],
            "mailsrv: option --log-level: log_level must be one of DEBUG, INFO, WARNING, ERROR, "
            'CRITICAL, got "LOUD"',
        ),
        (
            ["--maildir", "afile"],
            'mailsrv: option --maildir: maildir "afile" is a file, not a directory',
        ),
        (
            ["--port-offset", "abc"],
            "mailsrv serve: argument --port-offset: invalid int value: 'abc' "
            "(see mailsrv serve --help)",
        ),
    ],
)
def test_a_bad_flag_is_one_line_and_status_2(tmp_path, flags, line):
    (tmp_path / "afile").write_text("")
    assert one_error_line(run(tmp_path, "serve", *flags)) == line


def test_an_unwritable_maildir_root_is_named_at_start(tmp_path):
    (tmp_path / "plain").write_text("")
    result = run(tmp_path, "serve", "--ephemeral", "--maildir", "plain/mail", "--certs", "c")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "mailsrv: the Maildir root plain/mail cannot be made: plain is a file, not a directory"
    )


def test_check_config_prints_the_effective_configuration(tmp_path):
    (tmp_path / "mailsrv.toml").write_text(
        'dev = true\nhttp_token = "s3cret"\nhostnames = ["mail.test"]\n'
        "[limits]\nmessage_size = 1000\n"
    )
    result = run(tmp_path, "check-config", "mailsrv.toml")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "s3cret" not in result.stdout
    shown = tomllib.loads(result.stdout)
    assert shown["http_token"] == "(hidden)"
    assert shown["port_offset"] == 3000, "the dev defaults are part of the effective config"
    assert shown["allow_plaintext_auth"] is True
    assert shown["users_file"] == str(Path("var/users"))
    assert shown["limits"]["message_size"] == 1000
    assert shown["limits"]["bad_commands"] == 20, "defaults are shown too"
    assert "#   imap        3143" in result.stdout


def test_check_config_of_a_missing_file(tmp_path):
    line = one_error_line(run(tmp_path, "check-config", "nope.toml"))
    assert line == "mailsrv: cannot read config nope.toml: No such file or directory"
