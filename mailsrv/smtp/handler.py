"""The aiosmtpd handler: which recipients are local users, the ``Received:`` header, delivery."""

from __future__ import annotations

import email.utils
import logging
import secrets
import time
from typing import Any, Protocol

from aiosmtpd.smtp import Envelope, Session, TLSSetupException

from mailsrv.context import ServerContext, SessionInfo
from mailsrv.scan.delivery import Scanned
from mailsrv.store.base import INBOX, MessageTooLarge, OverQuota, StoreError
from mailsrv.store.names import check_user_name

log = logging.getLogger("mailsrv.smtp")

#: RFC 5321 §4.5.3.1.8 requires at least 100; more is almost always abuse.
MAX_RECIPIENTS = 1000
#: RFC 3463 5.2.2: mailbox full (RFC 9208 quota); permanent, as Dovecot's LMTP answers it.
OVER_QUOTA = "552 5.2.2 Mailbox is full: over quota"


def peer_host(peer: Any) -> str:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    if peer == "":  # a UNIX socket's client (LMTP) has no address
        return "local"
    return str(peer or "unknown")


class IngressServer(Protocol):
    """What the handler uses of the protocol calling it (``mailsrv.smtp.session.IngressSMTP``)."""

    info: SessionInfo

    @property
    def tls_active(self) -> bool: ...

    @property
    def plaintext_ok(self) -> bool: ...

    def trace_data(self, size: int) -> None: ...


class IngressEnvelope(Envelope):
    """The envelope plus the local users its recipients resolved to: ``users`` without
    duplicates, ``rcpt_users`` one per accepted RCPT, beside ``rcpt_tos`` (LMTP replies so)."""

    def __init__(self) -> None:
        super().__init__()
        self.users: list[str] = []
        self.rcpt_users: list[str] = []


def ingress_envelope(envelope: Envelope | None) -> IngressEnvelope:
    if not isinstance(envelope, IngressEnvelope):  # aiosmtpd always builds ours
        raise TypeError("unexpected envelope type")
    return envelope


def _users_of(envelope: Envelope | None) -> list[str]:
    return ingress_envelope(envelope).users


class IngressHandler:
    """The aiosmtpd handler: recipient checks, ``Received:`` and ``Store.deliver``."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        cfg = ctx.config
        names = {"localhost", cfg.server_name, *cfg.hostnames, cfg.host}
        self.local_domains = {n.lower() for n in names if n}
        self.local_domains |= {f"[{n}]" for n in ("127.0.0.1", cfg.host)}
        self.local_domains |= {"[ipv6:::1]"}

    async def recipient_user(self, address: str) -> tuple[str | None, str]:
        """The local user for ``address``, or None and the SMTP reply refusing it."""
        local, _, domain = address.rpartition("@") if "@" in address else (address, "", "")
        dev = self.ctx.config.dev
        if domain and not dev and domain.lower() not in self.local_domains:
            return None, "550 5.7.1 Relaying denied: mailsrv only delivers to its own users"
        try:
            check_user_name(local)
        except StoreError:
            return None, "550 5.1.3 Bad recipient address syntax"
        auth = self.ctx.auth
        for candidate in (local, local.lower()):
            if auth.known(candidate) or await self.ctx.store.user_exists(candidate):
                return candidate, "250 2.1.5 OK"
        if dev:
            return local, "250 2.1.5 OK"
        return None, "550 5.1.1 No such user here"

    async def handle_RCPT(
        self,
        server: IngressServer,
        session: Session,
        envelope: Envelope,
        address: str,
        options: Any,
    ) -> str:
        users = _users_of(envelope)
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        user, reply = await self.recipient_user(address)
        if user is None:
            return reply
        # A mailbox with no room left at all is refused here, for this recipient alone; unless
        # the scanner may file the message into a folder with rules of its own (Junk:ignore):
        # then DATA decides, against that folder.
        if not (self.ctx.scanner.enabled and self.ctx.quota.rules(user).mailboxes):
            try:
                await self.ctx.quota.check(user, 1)
            except OverQuota:
                return OVER_QUOTA
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        ingress_envelope(envelope).rcpt_users.append(user)
        if user not in users:
            users.append(user)
        return reply

    async def handle_DATA(self, server: IngressServer, session: Session, envelope: Envelope) -> str:
        users = _users_of(envelope)
        content = envelope.original_content or b""
        server.trace_data(len(content))
        msg_id = secrets.token_hex(8)
        data = self.received_header(server, session, envelope, msg_id).encode() + content
        scanned = await self.ctx.scanner.scan(data, server.info.id)
        if scanned.smtp_refusal is not None:
            return scanned.smtp_refusal
        failed = False
        try:  # one reply for all recipients: nobody gets it unless it fits everyone's quota
            folders = await self._placements(users, scanned)
            room = await self.ctx.quota.reserve(users, len(scanned.data), folders=folders)
        except OverQuota:
            return OVER_QUOTA
        except StoreError as exc:  # a quota lock held too long by another process's save
            log.warning("%s: mailbox or quota check failed, answered 451: %s", server.info.id, exc)
            return "451 4.3.0 Delivery failed; try again later"
        with room:
            for user in users:
                try:
                    folder = INBOX if folders is None else folders[user]  # placed already
                    uid = (
                        await scanned.deliver(self.ctx.store, user, folder, actor=server.info.id)
                    ).uid
                except MessageTooLarge:
                    return "552 5.3.4 Message too big for the mailbox"
                except StoreError:
                    log.exception("%s: delivery to %s failed", server.info.id, user)
                    failed = True
                    continue
                log.info("%s: delivered %s to %s uid %d", server.info.id, msg_id, user, uid)
        if failed:
            return "451 4.3.0 Delivery failed for some recipients; try again later"
        return f"250 2.0.0 OK: queued as {msg_id}"

    async def _placements(self, users: list[str], scanned: Scanned) -> dict[str, str] | None:
        """Each user's folder for this message, where the scanner moves it (Junk, quarantine),
        so its quota is checked against that folder's rules; None when nothing moves it."""
        for user in users:
            await self.ctx.store.ensure_user(user)
        if scanned.result is None:
            return None
        return {u: (await scanned.placement(self.ctx.store, u))[0] for u in users}

    def received_header(
        self, server: IngressServer, session: Session, envelope: Envelope, msg_id: str
    ) -> str:
        """RFC 5321 §4.4 trace header; ``with`` per RFC 3848 (ESMTPSA: TLS and AUTH)."""
        proto = self.with_protocol(session)
        if server.tls_active:
            proto += "S"
        if session.authenticated:
            proto += "A"
        peer = peer_host(session.peer)
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")
        fold = f" for <{envelope.rcpt_tos[0]}>" if len(envelope.rcpt_tos) == 1 else ""
        date = email.utils.formatdate(time.time(), localtime=True)
        return (
            f"Received: from {helo} ([{peer}])\r\n"
            f"\tby {self.ctx.config.server_name} (mailsrv) with {proto} id {msg_id}{fold};\r\n"
            f"\t{date}\r\n"
        )

    def with_protocol(self, session: Session) -> str:
        """The ``with`` word of ``Received:`` before the TLS and AUTH suffixes (RFC 3848)."""
        return "ESMTP" if session.extended_smtp else "SMTP"

    async def handle_EHLO(
        self,
        server: IngressServer,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if not server.plaintext_ok:
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        if self.ctx.faults.starttls_stripped("smtp", server.info.user):
            responses = [r for r in responses if r[4:] != "STARTTLS"]
        return responses

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # The client broke off the STARTTLS handshake (it refused our certificate, as
            # clients should when a TLS fault presents a bad one): its doing, not a server
            # error, and aiosmtpd closes the connection. IMAP and POP3 log theirs alike.
            log.debug("SMTP STARTTLS handshake failed: %r", error.__cause__)
            return "454 4.7.0 TLS not available"
        log.error("SMTP session error", exc_info=error)
        self.ctx.metrics.error("smtp")
        return "451 4.3.0 Internal error; try again later"
