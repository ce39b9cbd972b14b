"""Start-up refusals name what is wrong: the Maildir root, the port and its service."""

from __future__ import annotations

import asyncio
import errno
import os
from pathlib import Path

import pytest

from mailsrv.config import Config
from mailsrv.server import MailServer, PortInUse, StartupError, _bind, check_maildir_root


def test_a_missing_root_under_a_writable_parent_is_fine(tmp_path):
    check_maildir_root(tmp_path / "var" / "mail")
    check_maildir_root(tmp_path)


def test_a_root_that_is_a_file(tmp_path):
    (tmp_path / "mail").write_text("")
    with pytest.raises(StartupError, match=r"the Maildir root .*mail is a file, not a directory"):
        check_maildir_root(tmp_path / "mail")
    with pytest.raises(StartupError, match=r"mail/x cannot be made: .*mail is a file"):
        check_maildir_root(tmp_path / "mail" / "x")


def test_an_unwritable_root_is_named(tmp_path, monkeypatch):
    root = tmp_path / "mail"
    root.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != root)
    with pytest.raises(StartupError) as info:
        check_maildir_root(root)
    assert info.value.strerror == (
        f"the Maildir root {root} is not writable by this user: fix its permissions or choose "
        "another with --maildir"
    )
    assert info.value.errno == errno.EACCES


def test_the_server_checks_its_root_before_binding(tmp_path):
    (tmp_path / "mail").write_text("")
    config = Config(maildir=tmp_path / "mail").with_ephemeral_ports()

    async def start() -> None:
        async with MailServer(config):
            pass

    with pytest.raises(StartupError, match="is a file"):
        asyncio.run(start())


def refuse(exc: OSError):
    async def make(port: int):
        raise exc

    return make


@pytest.mark.parametrize(
    ("port", "message"),
    [
        (
            143,
            "cannot bind the imap port 143: permission denied; ports below 1024 need root: "
            "use --port-offset 3000 (or --dev) or run as root",
        ),
        (3143, "cannot bind the imap port 3143: permission denied"),
    ],
)
def test_a_port_without_the_right(port, message):
    start = _bind("imap", port, refuse(PermissionError(errno.EACCES, "Permission denied")))
    with pytest.raises(PortInUse) as info:
        asyncio.run(start())
    assert info.value.strerror == message
    assert isinstance(info.value, StartupError)


def test_a_port_in_use_names_port_and_service():
    start = _bind("smtp", 3025, refuse(OSError(errno.EADDRINUSE, "in use")))
    with pytest.raises(PortInUse) as info:
        asyncio.run(start())
    assert info.value.strerror is not None
    assert info.value.strerror.startswith("cannot bind the smtp port 3025: Address already in use")
