"""What a mail client needs to reach this server, as the "Connect a client" page shows it.

    settings = ClientSettings.of(ctx.ports, host, "alice@localhost", tls=ctx.tls is not None)
    settings.imap.port, settings.imap.security    # 993, "SSL/TLS"
    settings.mutt(), settings.mbsync(), settings.curl()

The servers are the ones listening (``ServerContext.ports``), implicit TLS preferred, each with
the TLS mode it really has; the snippets name the CA file as the page offers it for download.
Pure: no request, no file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mailsrv.web.apple_profile import choose, local_part

#: The name the snippets give the downloaded CA (``/clients/ca.pem``).
CA_NAME = "~/mailsrv-ca.pem"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server: how a settings form names it."""

    protocol: str  # "IMAP", "POP3", "SMTP"
    host: str
    port: int
    security: str  # "SSL/TLS", "STARTTLS" or "None"

    @property
    def implicit(self) -> bool:
        return self.security == "SSL/TLS"


def _endpoint(
    ports: Mapping[str, int], protocol: str, implicit: str, plain: str, host: str, tls: bool
) -> Endpoint | None:
    try:
        found = choose(ports, implicit, plain, tls)
    except LookupError:
        return None
    modes = {True: "SSL/TLS", False: "STARTTLS"}
    security = modes[found.service == implicit] if found.tls else "None"
    return Endpoint(protocol, host, found.port, security)


def all_endpoints(ports: Mapping[str, int], host: str, tls: bool) -> list[Endpoint]:
    """Every listening client port, implicit TLS first (the manual-settings table)."""
    out = []
    for protocol, implicit, plain in (
        ("IMAP", "imaps", "imap"),
        ("POP3", "pop3s", "pop3"),
        ("SMTP", "smtps", "submission"),
    ):
        if tls and implicit in ports:
            out.append(Endpoint(protocol, host, ports[implicit], "SSL/TLS"))
        if plain in ports:
            out.append(Endpoint(protocol, host, ports[plain], "STARTTLS" if tls else "None"))
    return out


@dataclass(frozen=True, slots=True)
class ClientSettings:
    host: str
    address: str
    login: str
    tls: bool
    imap: Endpoint | None
    pop3: Endpoint | None
    smtp: Endpoint | None
    endpoints: tuple[Endpoint, ...]

    @classmethod
    def of(cls, ports: Mapping[str, int], host: str, address: str, tls: bool) -> ClientSettings:
        return cls(
            host=host,
            address=address,
            login=local_part(address),
            tls=tls,
            imap=_endpoint(ports, "IMAP", "imaps", "imap", host, tls),
            pop3=_endpoint(ports, "POP3", "pop3s", "pop3", host, tls),
            smtp=_endpoint(ports, "SMTP", "smtps", "submission", host, tls),
            endpoints=tuple(all_endpoints(ports, host, tls)),
        )

    def _url(self, scheme: str, end: Endpoint, path: str = "", user: bool = True) -> str:
        secure = "s" if end.implicit else ""
        login = f"{self.login}@" if user else ""
        return f"{scheme}{secure}://{login}{end.host}:{end.port}/{path}"

    def mutt(self) -> str:
        """A muttrc (mutt and neomutt) for IMAP and SMTP submission."""
        lines = [f'set from = "{self.address}"', f'set imap_user = "{self.login}"']
        if self.imap is not None:
            lines += [
                f'set folder = "{self._url("imap", self.imap)}"',
                'set spoolfile = "+INBOX"',
                'set record = "+Sent"',
                'set postponed = "+Drafts"',
            ]
        if self.smtp is not None:
            lines.append(f'set smtp_url = "{self._url("smtp", self.smtp)}"')
        if self.tls:
            lines += [
                f'set ssl_ca_certificates_file = "{CA_NAME}"',
                "set ssl_force_tls = yes",
            ]
            if any(e is not None and not e.implicit for e in (self.imap, self.smtp)):
                lines.append("set ssl_starttls = yes")
        return "\n".join(lines) + "\n"

    def mbsync(self) -> str:
        """An mbsyncrc (isync 1.4 and later) mirroring every folder into ~/Mail/mailsrv."""
        if self.imap is None:
            return "# no IMAP port is listening\n"
        ssl_type = {"SSL/TLS": "IMAPS", "STARTTLS": "STARTTLS"}.get(self.imap.security, "None")
        lines = [
            "IMAPAccount mailsrv",
            f"Host {self.imap.host}",
            f"Port {self.imap.port}",
            f"User {self.login}",
            'PassCmd "cat ~/.mailsrv-password"',
            f"SSLType {ssl_type}",
        ]
        if self.tls:
            lines.append(f"CertificateFile {CA_NAME}")
        lines += [
            "",
            "IMAPStore mailsrv-remote",
            "Account mailsrv",
            "",
            "MaildirStore mailsrv-local",
            "SubFolders Verbatim",
            "Path ~/Mail/mailsrv/",
            "Inbox ~/Mail/mailsrv/INBOX",
            "",
            "Channel mailsrv",
            "Far :mailsrv-remote:",
            "Near :mailsrv-local:",
            "Patterns *",
            "Create Both",
            "SyncState *",
        ]
        return "\n".join(lines) + "\n"

    def curl(self) -> str:
        """curl commands: list the INBOX over IMAP, then send a message through submission."""
        ca = f" --cacert {CA_NAME}" if self.tls else ""
        out = []
        if self.imap is not None:
            ssl = " --ssl-reqd" if self.imap.security == "STARTTLS" else ""
            out.append(
                f"curl{ca}{ssl} --user {self.login} "
                f"'{self._url('imap', self.imap, 'INBOX', user=False)}' -X 'FETCH 1:* (FLAGS)'"
            )
        if self.smtp is not None:
            ssl = " --ssl-reqd" if self.smtp.security == "STARTTLS" else ""
            out.append(
                f"printf 'Subject: hello\\r\\n\\r\\nhi\\r\\n' | curl{ca}{ssl} --user {self.login} "
                f"'{self._url('smtp', self.smtp, user=False)}' --mail-from {self.address} "
                f"--mail-rcpt {self.address} -T -"
            )
        return "\n".join(out) + "\n"
