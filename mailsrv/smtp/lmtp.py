"""LMTP (RFC 2033): how an MTA in front of mailsrv (Postfix's ``mailbox_transport``, Exim's lmtp
transport) hands mail to the store, on a TCP port (24, 3024 in dev mode) and optionally a UNIX
socket (``lmtp_socket``).

It is SMTP ingress with three differences, so it reuses ``IngressSMTP`` and ``IngressHandler``
(admission, fault hooks, tracing, timeouts and shutdown are the same, under the protocol name
``lmtp``): ``LHLO`` instead of ``HELO``/``EHLO`` (aiosmtpd's ``LMTP`` class); no AUTH, since the
MTA has done its checks and the port, like port 25, only takes mail for local users; and after
DATA one reply per accepted RCPT (RFC 2033 §4.2), so one recipient's failure (a message too big
for the mailbox, a store error) is that recipient's alone while the others are delivered.

A sub-address (RFC 5233) ``user+Folder`` goes into that folder of ``user`` when it exists, else
into the INBOX, as Dovecot's LMTP does with ``lmtp_save_to_detail_mailbox`` (imaptest's profile
mode delivers ``user+Spam`` so). A user whose own name has a ``+`` keeps it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import Envelope, Session

from mailsrv.context import ServerContext
from mailsrv.net.shutdown import LiveSessions
from mailsrv.scan.delivery import Scanned
from mailsrv.smtp.handler import IngressHandler, IngressServer, ingress_envelope
from mailsrv.smtp.session import IngressSMTP, through_run_command
from mailsrv.store.base import (
    INBOX,
    InvalidName,
    MessageTooLarge,
    NoSuchFolder,
    OverQuota,
    StoreError,
)

log = logging.getLogger("mailsrv.smtp")

IDENT = "LMTP mailsrv"


class LmtpHandler(IngressHandler):
    """The SMTP handler's recipient checks, with LMTP's ``Received:`` word and replies."""

    async def recipient_user(self, address: str) -> tuple[str | None, str]:
        """As SMTP's, but ``user+detail`` is ``user`` (see ``detail_folder``)."""
        local, at, domain = address.rpartition("@") if "@" in address else (address, "", "")
        base, plus, detail = local.partition("+")
        if plus and base and detail and not await self._exists(local):
            return await super().recipient_user(base + at + domain)
        return await super().recipient_user(address)

    async def _exists(self, name: str) -> bool:
        for candidate in (name, name.lower()):
            if self.ctx.auth.known(candidate) or await self.ctx.store.user_exists(candidate):
                return True
        return False

    def with_protocol(self, session: Session) -> str:
        return "LMTP"  # RFC 3848 §2: LMTP, LMTPS (TLS), LMTPA (AUTH), LMTPSA

    async def handle_EHLO(
        self,
        server: IngressServer,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """The ``LHLO`` reply: aiosmtpd's extensions without AUTH."""
        session.host_name = hostname
        return [r for r in responses if not r[4:].startswith("AUTH")]

    async def handle_DATA(self, server: IngressServer, session: Session, envelope: Envelope) -> str:
        """One reply line per accepted RCPT, in RCPT order (RFC 2033 §4.2); each user gets the
        message once per folder, however many of its addresses were given."""
        env = ingress_envelope(envelope)
        content = envelope.original_content or b""
        server.trace_data(len(content))
        msg_id = secrets.token_hex(8)
        data = self.received_header(server, session, envelope, msg_id).encode() + content
        scanned = await self.ctx.scanner.scan(data, server.info.id)
        if scanned.smtp_refusal is not None:  # the same answer for every recipient
            return "\r\n".join(scanned.smtp_refusal for _ in env.rcpt_tos)
        outcome: dict[tuple[str, str | None], tuple[str, str]] = {}
        replies = []
        for address, user in zip(env.rcpt_tos, env.rcpt_users, strict=True):
            where = (user, detail_folder(address, user))
            if where not in outcome:
                outcome[where] = await self._deliver(server, where, scanned, msg_id)
            code, text = outcome[where]
            replies.append(f"{code} <{address}> {text}")
        return "\r\n".join(replies)

    async def _deliver(
        self, server: IngressServer, where: tuple[str, str | None], scanned: Scanned, msg_id: str
    ) -> tuple[str, str]:
        """Deliver to one user (into its sub-address's folder if that exists): the reply's
        codes and its text."""
        user, folder = where
        store = self.ctx.store
        try:
            await store.ensure_user(user)
            target = folder or INBOX
            if scanned.result is not None and folder is None:  # spam to Junk: its rules
                target = (await scanned.placement(store, user))[0]
            with await self.ctx.quota.reserve([user], len(scanned.data), 1, target):
                try:
                    placed = await scanned.deliver(store, user, target, actor=server.info.id)
                except (NoSuchFolder, InvalidName):
                    if folder is None:
                        raise
                    placed = await scanned.deliver(store, user, actor=server.info.id)
            uid = placed.uid
        except MessageTooLarge:
            return "552 5.3.4", "Message too big for the mailbox"
        except OverQuota:
            return "552 5.2.2", "Mailbox is full: over quota"
        except StoreError:
            log.exception("%s: delivery to %s failed", server.info.id, user)
            return "451 4.3.0", "Delivery failed; try again later"
        log.info("%s: delivered %s to %s uid %d", server.info.id, msg_id, user, uid)
        return "250 2.0.0", f"OK: delivered as {msg_id}"


def detail_folder(address: str, user: str) -> str | None:
    """The folder a sub-address names (``alice+Spam@localhost`` for ``alice``: ``Spam``)."""
    local = address.rpartition("@")[0] if "@" in address else address
    if local.lower() == user.lower():
        return None
    return local.partition("+")[2] or None


class IngressLMTP(IngressSMTP, LMTP):
    """``IngressSMTP`` speaking LMTP: aiosmtpd's ``LHLO``, no AUTH, one reply line traced at a
    time."""

    protocol = "lmtp"
    greeting_ident = IDENT

    def __init__(
        self, ctx: ServerContext, handler: LmtpHandler, port: int, live: LiveSessions
    ) -> None:
        super().__init__(ctx, handler, "lmtp", port, live)

    async def check_auth_needed(self, caller_method: str) -> bool:
        return False

    async def smtp_AUTH(self, arg: str) -> None:
        await self.push("502 5.5.1 AUTH is not offered over LMTP")

    async def push(self, status: AnyStr) -> None:
        """The reply after DATA comes as several lines: each is traced (and sent) on its own."""
        lines: list[Any] = (
            status.split("\r\n") if isinstance(status, str) else status.split(b"\r\n")
        )
        for line in lines:
            await super().push(line)


# LMTP's HELO/EHLO refusals and LHLO, and our AUTH refusal, traced and fault-hooked like the
# rest (``IngressSMTP`` already routes the inherited ``smtp_<VERB>`` methods so).
for _name, _impl in (
    ("smtp_LHLO", LMTP.smtp_LHLO),
    ("smtp_HELO", LMTP.smtp_HELO),
    ("smtp_EHLO", LMTP.smtp_EHLO),
    ("smtp_AUTH", IngressLMTP.smtp_AUTH),
):
    setattr(IngressLMTP, _name, through_run_command(_name.removeprefix("smtp_"), _impl))
