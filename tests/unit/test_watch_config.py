"""The config's ``watch`` and ``poll_interval`` keys."""

from __future__ import annotations

import sys

import pytest

from mailsrv.config import Config, ConfigError, load_config


def test_defaults_follow_the_platform():
    config = Config()
    assert config.watch == ("inotify" if sys.platform.startswith("linux") else "poll")
    assert config.poll_interval == 0.4


def test_both_keys_from_a_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('watch = "poll"\npoll_interval = 2\n')
    config = load_config(path)
    assert config.watch == "poll"
    assert config.poll_interval == 2.0
    assert isinstance(config.poll_interval, float)
    assert load_config(watch="inotify", poll_interval=0.25).watch == "inotify"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('watch = "fanotify"\n', 'watch must be inotify or poll, got "fanotify"'),
        ("watch = 1\n", "watch must be inotify or poll"),
        ("poll_interval = 0\n", "poll_interval must be more than 0"),
        ("poll_interval = -1.5\n", "poll_interval must be more than 0"),
        ("poll_interval = 3600\n", "at most 60"),
        ('poll_interval = "1s"\n', "poll_interval must be a number of seconds"),
        ("poll_interval = true\n", "poll_interval must be a number of seconds"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
