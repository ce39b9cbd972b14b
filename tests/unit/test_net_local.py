"""``mailsrv.net.local``: the one answer to "is this name or address this machine's own?"."""

from __future__ import annotations

import pytest

from mailsrv.net.local import BadHost, LocalNames, is_loopback, split_host, split_origin


@pytest.mark.parametrize(
    "name",
    [
        "127.0.0.1",
        "127.1.2.3",
        "127.255.255.254",
        "::1",
        "[::1]",
        "::ffff:127.0.0.1",
        "[::ffff:127.0.0.1]",
        "0:0:0:0:0:0:0:1",
        "localhost",
        "LOCALHOST",
        "LocalHost",
        "localhost.",
    ],
)
def test_loopback_names_and_addresses(name: str) -> None:
    assert is_loopback(name)


@pytest.mark.parametrize(
    "name",
    [
        "127.0.0.1.evil.example",  # DNS rebinding: a name its owner points at 127.0.0.1
        "127.evil",
        "127.",
        "127.0.0.1.",
        "0177.0.0.1",  # octal: some resolvers read it as 127.0.0.1, ipaddress does not
        "0x7f.0.0.1",
        "127.1",  # short form: not a canonical literal
        "2130706433",  # 127.0.0.1 as one number
        "localhost.evil.example",
        "evil-localhost",
        "localhost..",
        "xn--localhost-",  # IDNA-looking names are names, never loopback
        "xn--lcalhost-8za",
        "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",  # fullwidth "localhost"
        "0.0.0.0",
        "::",
        "[::ffff:10.0.0.1]",
        "::ffff:8.8.8.8",
        "fe80::1%lo",
        "[::1%25lo]",
        "10.0.0.1",
        "",
        "?",
        "[127.0.0.1]",
    ],
)
def test_not_loopback(name: str) -> None:
    assert not is_loopback(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8025", ("127.0.0.1", 8025)),
        ("localhost", ("localhost", None)),
        ("[::1]:8025", ("[::1]", 8025)),
        ("[::1]", ("[::1]", None)),
        ("mail.example.org:80", ("mail.example.org", 80)),
        ("Example.ORG.", ("Example.ORG.", None)),
    ],
)
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "[evil",
        "[x]",
        "[::1]x",
        "[::1]:",
        "host:",
        "host:99999",
        "host:8a",
        "host:+80",
        "a b",
        "evil.example/path",
        "user@host",
        "héllo.example",
        "a" * 301,
        "host:80:80",
        "-lead.example",
    ],
)
def test_split_host_refuses_malformed_values(value: str) -> None:
    with pytest.raises(BadHost):
        split_host(value)


def test_split_origin() -> None:
    assert split_origin("http://127.0.0.1:8025") == ("http", "127.0.0.1", 8025)
    assert split_origin("HTTPS://localhost") == ("https", "localhost", None)
    for bad in ("http://[x", "ftp://localhost", "127.0.0.1:8025", "http://", "null"):
        with pytest.raises(BadHost):
            split_origin(bad)


def test_local_names_on_loopback_allow_loopback_and_configured_names_only() -> None:
    names = LocalNames.of(["Mail.Example.org"], "127.0.0.1")
    assert names.allows("127.0.0.1") and names.allows("localhost") and names.allows("[::1]")
    assert names.allows("mail.example.org") and names.allows("MAIL.example.org.")
    assert not names.allows("127.0.0.1.evil.example")
    assert not names.allows("10.0.0.1")
    assert not names.allows("example.org")


def test_local_names_bound_to_one_address_or_every_interface() -> None:
    one = LocalNames.of([], "192.0.2.7")
    assert one.allows("192.0.2.7") and not one.allows("192.0.2.8")
    every = LocalNames.of([], "0.0.0.0")
    # Any IP literal: a rebinding page can only use a name, and names stay refused.
    assert every.allows("192.0.2.8") and every.allows("[2001:db8::1]")
    assert not every.allows("evil.example")
