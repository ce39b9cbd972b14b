"""``mailsrv check-config``'s rendering of the effective configuration."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from mailsrv.cli.check_config import HIDDEN, render
from mailsrv.config import Config, Limits, load_config


def test_secrets_are_hidden_and_unset_keys_are_comments():
    text = render(Config(http_token="s3cret-token"))
    assert "s3cret-token" not in text
    assert f"http_token = {HIDDEN}" in text
    assert "# users_file is not set" in text


def test_the_output_reads_back_as_the_same_configuration(tmp_path):
    config = Config(
        maildir=Path("/srv/mail"),
        hostnames=("mail.example.test",),
        ports={"imap": 1143},
        pop3_delete="trash",
        limits=dataclasses.replace(Limits(), message_size=1000),
    )
    path = tmp_path / "again.toml"
    path.write_text(render(config))
    assert load_config(path) == config
    assert tomllib.loads(render(config))["limits"]["message_size"] == 1000


def test_the_ports_each_service_would_use():
    text = render(load_config(dev=True, ports={"pop3": -1}))
    assert "#   imap        3143" in text
    assert "#   pop3        off" in text
    assert "#   http        8025" in text
