"""The fault hook every protocol calls before it runs a command (faults set by tests through
``mailsrv.faults.FaultInjector``).

``before_command`` asks the injector, waits out a DELAY itself, and says what the adapter must
do instead of (or besides) running the command: ``Reply`` (FAIL, or the STARTTLS/STLS that a
strip-starttls fault refuses: answer with this status line, the protocol adds its tag) or
``Drop`` (close the connection, at once or after ``after_bytes`` of the command's response).
None means: run the command as usual. Each protocol only renders the reply and closes its own
way, so a fault means the same on POP3, IMAP and SMTP.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mailsrv.faults import Fault, FaultInjector, FaultKind


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the command with ``text`` (a status line in the protocol's form) and skip it."""

    text: str


@dataclass(frozen=True, slots=True)
class Drop:
    """Close the connection: before the command runs (``after_bytes`` None), or once that many
    bytes of its response have been sent."""

    after_bytes: int | None


Action = Reply | Drop


def decide(fault: Fault) -> Action | float:
    """What ``fault`` asks for: an action, or the seconds to wait before running the command."""
    if fault.kind in (FaultKind.FAIL, FaultKind.STRIP_STARTTLS):
        return Reply(fault.reply)
    if fault.kind is FaultKind.DROP:
        return Drop(fault.after_bytes)
    return fault.seconds


async def before_command(
    faults: FaultInjector, protocol: str, verb: str, argument: str = "", user: str | None = None
) -> Action | None:
    """The fault to apply to ``verb`` on ``protocol`` now (a DELAY is waited out here);
    ``argument`` and ``user`` are what a fault's ``match`` and ``user`` look at."""
    fault = faults.check(protocol, verb, argument, user)
    if fault is None:
        return None
    action = decide(fault)
    if isinstance(action, Reply | Drop):
        return action
    await asyncio.sleep(action)
    return None
