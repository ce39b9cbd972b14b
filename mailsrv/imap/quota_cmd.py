"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT and SETQUOTA for the one quota root a user has.

Every mailbox of a user belongs to one root, ``"User quota"`` (``quota.ROOT``), with the
resources the limits give it: STORAGE in units of 1024 octets (RFC 9208 §5.1, usage rounded up)
and MESSAGE. As Dovecot does, every mailbox reports the ``*`` rule's limits and the usage of the
mailboxes that count, whatever rule a mailbox of its own has (``mailsrv.quota_rules``). A root
without limits is listed by GETQUOTAROOT with no QUOTA line (Dovecot sends no QUOTAROOT line
at all then; RFC 9208 §4.3.2 asks for one). SETQUOTA is
answered NO: limits are set by the operator (config, users file, fixture), not by users;
RFC 9208 makes SETQUOTA optional (its own capability, QUOTASET), which is not advertised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailsrv.imap.command_registry import CommandRegistry
from mailsrv.imap.commands import GetQuota, SetQuota
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.mailbox_names import encode_name
from mailsrv.imap.responses import untagged
from mailsrv.imap.strings import string
from mailsrv.quota import MESSAGE, ROOT, STORAGE

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

HANDLERS = CommandRegistry()


async def quota_line(s: ImapSession) -> bytes:
    """``* QUOTA "User quota" (STORAGE used limit MESSAGE used limit)``."""
    policy = s.ctx.quota
    limits = policy.limits(s.username)
    used = await policy.usage(s.username)
    items = []
    if limits.storage is not None:
        items.append(f"{STORAGE} {-(-used.octets // 1024)} {limits.storage // 1024}")
    if limits.messages is not None:
        items.append(f"{MESSAGE} {used.messages} {limits.messages}")
    return untagged(b"QUOTA " + string(ROOT.encode()) + f" ({' '.join(items)})".encode())


@HANDLERS.on(GetQuota)
async def get_quota(s: ImapSession, cmd: GetQuota) -> None:
    limited = s.ctx.quota.limits(s.username).limited
    if cmd.name == "GETQUOTAROOT":
        name = s.mailbox_name(cmd.argument)
        mailbox = await s.ctx.store.open(s.username, name)  # NO [NONEXISTENT] if it is not
        root = string(ROOT.encode())
        s.out.write(untagged(b"QUOTAROOT " + encode_name(mailbox.name, utf8=s.utf8) + b" " + root))
        if limited:
            s.out.write(await quota_line(s))
        await s.ok(cmd.tag, "Getquotaroot completed.")
        return
    if cmd.argument.decode("utf-8", "replace") != ROOT or not limited:
        raise CommandFailed("NO", "Quota root doesn't exist", "NONEXISTENT")
    s.out.write(await quota_line(s))
    await s.ok(cmd.tag, "Getquota completed.")


@HANDLERS.on(SetQuota)
async def set_quota(s: ImapSession, cmd: SetQuota) -> None:
    raise CommandFailed("NO", "Quota limits are set by the administrator", "NOPERM")
