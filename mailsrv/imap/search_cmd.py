"""SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH (RFC 4731), SEARCHRES (RFC 5182)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap.commands import Command
from mailsrv.imap.errors import CommandFailed

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession


async def search(s: ImapSession, cmd: Command) -> None:
    raise CommandFailed("NO", "SEARCH is not available yet")
