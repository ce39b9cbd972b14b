"""The Apple configuration profile (``.mobileconfig``) that sets up iOS and macOS Mail.

    body = mobileconfig(ports, "mail.example.test", "alice@mail.example.test", ca_der)

One plist (``plistlib``), two payloads: ``com.apple.mail.managed`` (an IMAP account and its SMTP
submission server, with the ports and TLS modes the server really listens on, implicit TLS
preferred) and ``com.apple.security.root`` carrying the local CA certificate (DER), so the device
can trust the server's certificate. The profile is unsigned: the device shows it as "Not
Verified" and asks before installing it. On iOS a root certificate installed from a profile must
then be trusted once by hand (Settings, General, About, Certificate Trust Settings). Identifiers
and UUIDs derive from the host and the address, so a second download replaces the first profile
instead of adding another. Pure: no request, no file, no clock.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: What browsers and devices expect for a profile download.
CONTENT_TYPE = "application/x-apple-aspen-config"
_NAMESPACE = uuid.UUID("6f1c2d3e-8a4b-4c5d-9e6f-7a8b9c0d1e2f")


@dataclass(frozen=True, slots=True)
class MailServerChoice:
    """One server as a client is told to reach it."""

    service: str  # the ctx.ports key: "imaps", "submission", ...
    port: int
    tls: bool  # Apple's UseSSL: TLS at connect on implicit ports, STARTTLS on the others


def choose(ports: Mapping[str, int], implicit: str, starttls: str, tls: bool) -> MailServerChoice:
    """Implicit TLS when it listens, else the STARTTLS (or, without TLS, plain) port."""
    if tls and implicit in ports:
        return MailServerChoice(implicit, ports[implicit], True)
    if starttls in ports:
        return MailServerChoice(starttls, ports[starttls], tls)
    raise LookupError(f"neither {implicit} nor {starttls} is listening")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\0".join(parts))).upper()


def local_part(address: str) -> str:
    """The login a client is given for ``address``: its local part (all of it without an @)."""
    return address.rpartition("@")[0] or address


def _identifier(host: str, address: str) -> str:
    labels = [p for p in reversed(host.lower().split(".")) if p.isascii() and p.isalnum()]
    user = "".join(c if c.isascii() and c.isalnum() else "-" for c in address.lower())
    return ".".join([*(labels or ["local"]), "mailsrv", user])


def mobileconfig(ports: Mapping[str, int], host: str, address: str, ca_der: bytes | None) -> bytes:
    """The profile's bytes (an XML plist). ``ca_der`` None: TLS is off, no CA payload."""
    tls = ca_der is not None
    incoming = choose(ports, "imaps", "imap", tls)
    outgoing = choose(ports, "smtps", "submission", tls)
    login = local_part(address)
    ident = _identifier(host, address)
    mail: dict[str, Any] = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{ident}.mail",
        "PayloadUUID": _uuid("mail", host, address),
        "PayloadDisplayName": f"mailsrv mail ({address})",
        "EmailAccountDescription": f"mailsrv on {host}",
        "EmailAccountName": login,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": host,
        "IncomingMailServerPortNumber": incoming.port,
        "IncomingMailServerUseSSL": incoming.tls,
        "IncomingMailServerUsername": login,
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": host,
        "OutgoingMailServerPortNumber": outgoing.port,
        "OutgoingMailServerUseSSL": outgoing.tls,
        "OutgoingMailServerUsername": login,
        "OutgoingPasswordSameAsIncomingPassword": True,
    }
    content: list[dict[str, Any]] = [mail]
    if ca_der is not None:
        content.append(
            {
                "PayloadType": "com.apple.security.root",
                "PayloadVersion": 1,
                "PayloadIdentifier": f"{ident}.ca",
                "PayloadUUID": _uuid("ca", host, address),
                "PayloadDisplayName": "mailsrv local CA",
                "PayloadCertificateFileName": "mailsrv-ca.cer",
                "PayloadContent": ca_der,
            }
        )
    profile: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": ident,
        "PayloadUUID": _uuid("profile", host, address),
        "PayloadDisplayName": f"mailsrv: {address}",
        "PayloadDescription": (
            f"Mail account {address} on the mailsrv server {host} (IMAP and SMTP submission)"
            + (", and the server's local certificate authority." if tls else ".")
        ),
        "PayloadOrganization": "mailsrv",
        "PayloadRemovalDisallowed": False,
        "PayloadContent": content,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True)
