"""Is this name or address this machine's own? One answer for every place that asks.

The plaintext-auth policy (peers), the dev-mode SMTP/connection exemptions (peers) and the web
console's ``Host``/``Origin`` checks (names a browser sent) all ask here. The test is exact: an IP
literal in 127.0.0.0/8 or ``::1`` (IPv4-mapped forms too), or the name ``localhost``. A prefix
test would let ``127.0.0.1.evil.example`` through, a name its owner can point at 127.0.0.1 (DNS
rebinding). Octal or short IPv4 forms (``0177.0.0.1``, ``127.1``) are not literals here: browsers
send the dotted-quad form, and a name that only some resolvers read as an address is refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

#: A DNS name as it may appear in a Host header: labels of letters, digits, "-" and "_".
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT = re.compile(r"[0-9]{1,5}")
#: Longest Host header value considered (a DNS name is at most 253 characters).
MAX_HOST = 300

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_literal(text: str) -> IpAddress | None:
    """The address ``text`` spells in canonical literal form (brackets allowed for IPv6)."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if ":" not in text:
            return None
    if "%" in text:  # a zone index names an interface, not an address of ours
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _loopback_ip(addr: IpAddress) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


def normal_name(name: str) -> str:
    """A host name compared case-insensitively and without its trailing root dot."""
    name = name.lower()
    return name[:-1] if name.endswith(".") and not name.endswith("..") else name


def is_loopback(name: str) -> bool:
    """True for an IP literal in 127.0.0.0/8 or ``::1`` (IPv4-mapped too) and for ``localhost``."""
    addr = ip_literal(name)
    if addr is not None:
        return _loopback_ip(addr)
    return normal_name(name) == "localhost"


def is_wildcard(address: str) -> bool:
    """True for an address that binds every interface (``0.0.0.0``, ``::``, empty)."""
    if address in ("", "*"):
        return True
    addr = ip_literal(address)
    return addr is not None and addr.is_unspecified


class BadHost(ValueError):
    """A Host or Origin value that does not parse; the message says what is wrong."""


def split_host(value: str) -> tuple[str, int | None]:
    """``host[:port]`` from a Host header (or an Origin's authority), checked strictly."""
    if not value or len(value) > MAX_HOST or not value.isascii():
        raise BadHost("the host must be 1 to 300 ASCII characters")
    port_text: str | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise BadHost("an IPv6 host must end with ']'")
        host, rest = value[: end + 1], value[end + 1 :]
        if ip_literal(host) is None:
            raise BadHost("the bracketed host is not an IPv6 address")
        if rest:
            if not rest.startswith(":"):
                raise BadHost("only ':port' may follow a bracketed host")
            port_text = rest[1:]
    else:
        host, colon, port_text_found = value.partition(":")
        if colon:
            port_text = port_text_found
        if not _NAME.fullmatch(host):
            raise BadHost("the host is not a valid name or address")
    port: int | None = None
    if port_text is not None:
        if not _PORT.fullmatch(port_text) or int(port_text) > 65535:
            raise BadHost("the port must be a number from 0 to 65535")
        port = int(port_text)
    return host, port


def split_origin(value: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of an Origin header: ``http://host[:port]`` or ``https://...``."""
    scheme, sep, authority = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise BadHost("the origin must be http://host[:port] or https://host[:port]")
    host, port = split_host(authority)
    return scheme.lower(), host, port


@dataclass(frozen=True, slots=True)
class LocalNames:
    """The names a client may use for this server: loopback, configured host names, the bound
    address, and (bound to every interface) any IP literal, which no rebinding page can use."""

    hostnames: frozenset[str]
    bound: str

    @classmethod
    def of(cls, hostnames: Iterable[str], bound: str) -> LocalNames:
        return cls(frozenset(normal_name(h) for h in hostnames), bound)

    def allows(self, host: str) -> bool:
        if is_loopback(host) or normal_name(host) in self.hostnames:
            return True
        addr = ip_literal(host)
        if addr is None:
            return False
        if is_wildcard(self.bound):
            return True
        bound = ip_literal(self.bound)
        return bound is not None and bound == addr
