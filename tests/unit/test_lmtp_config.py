"""The LMTP keys of the configuration: the port (24, 3024 in dev mode) and ``lmtp_socket``."""

from __future__ import annotations

from pathlib import Path

from mailsrv.config import load_config


def test_lmtp_port_is_24_and_3024_in_dev_mode() -> None:
    assert load_config().port_for("lmtp") == 24
    assert load_config(dev=True).port_for("lmtp") == 3024
    assert load_config(dev=True).with_ephemeral_ports().port_for("lmtp") == 0


def test_lmtp_port_can_be_set_or_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "mailsrv.toml"
    path.write_text("ports = { lmtp = 2424 }\n")
    assert load_config(path).port_for("lmtp") == 2424
    path.write_text("ports = { lmtp = -1 }\n")
    assert load_config(path).port_for("lmtp") is None


def test_lmtp_socket_is_a_path_and_off_by_default(tmp_path: Path) -> None:
    assert load_config().lmtp_socket is None
    path = tmp_path / "mailsrv.toml"
    path.write_text('lmtp_socket = "var/lmtp.sock"\n')
    assert load_config(path).lmtp_socket == Path("var/lmtp.sock")


def test_console_names_lmtp_deliveries() -> None:
    from mailsrv.web.events import protocol_of

    assert protocol_of("lmtp-2") == "lmtp"
