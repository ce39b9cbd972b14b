"""Fault injection for tests: make the server fail, delay or drop on a chosen command.

``server.faults.fail("imap", "FETCH", "NO [UNAVAILABLE] try later", times=1)`` makes the next
IMAP FETCH answer with that reply (the tag is added by the server). Listeners call ``check``
before running a command and act on the ``Fault`` it returns. Tests add faults from their own
thread while the server's loop checks them, so the list is guarded by a lock (taken only when a
fault is set: with none, ``check`` is one attribute test).
"""

from __future__ import annotations

import enum
import re
import threading
from dataclasses import dataclass

PROTOCOLS = ("imap", "pop3", "smtp", "lmtp")

#: The reply a FAIL fault sends when the test gives none.
DEFAULT_REPLIES: dict[str, str] = {
    "imap": "NO [UNAVAILABLE] injected failure",
    "pop3": "-ERR [SYS/TEMP] injected failure",
    "smtp": "451 4.3.0 Injected failure",
    "lmtp": "451 4.3.0 Injected failure",
}

#: What a FAIL reply must look like on each protocol, so a test cannot break the framing.
_REPLY_FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "imap": (re.compile(r"(OK|NO|BAD)( .*)?\Z"), "an IMAP status: 'NO ...', 'BAD ...' or 'OK ...'"),
    "pop3": (re.compile(r"(-ERR|\+OK)( .*)?\Z"), "a POP3 status: '-ERR ...' or '+OK ...'"),
    "smtp": (re.compile(r"[2-5][0-9][0-9]( .*)?\Z"), "an SMTP reply: a code such as '451 ...'"),
}
_REPLY_FORMS["lmtp"] = _REPLY_FORMS["smtp"]


class FaultKind(enum.Enum):
    FAIL = "fail"  # answer with ``reply`` instead of running the command
    DELAY = "delay"  # wait ``seconds`` first, then run it
    DROP = "drop"  # close the connection (after ``after_bytes`` of the response, if set)


@dataclass(slots=True)
class Fault:
    protocol: str  # "imap", "pop3", "smtp"
    command: str  # upper-case command name; "UID FETCH" for UID commands, "*" for any
    kind: FaultKind
    reply: str = ""
    seconds: float = 0.0
    after_bytes: int | None = None
    times: int | None = 1  # None: always
    hits: int = 0


def _check_reply(protocol: str, reply: str) -> str:
    if "\r" in reply or "\n" in reply:
        raise ValueError("a fault reply is one line: no CR or LF in it")
    pattern, form = _REPLY_FORMS[protocol]
    if not pattern.match(reply):
        raise ValueError(f"the reply for a {protocol} fault must be {form}, not {reply!r}")
    return reply


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def _add(self, fault: Fault) -> Fault:
        fault.protocol = fault.protocol.lower()
        fault.command = " ".join(fault.command.upper().split())
        if fault.protocol not in PROTOCOLS:
            raise ValueError(f"fault protocol must be one of {', '.join(PROTOCOLS)}")
        if not fault.command:
            raise ValueError("a fault needs a command name (or '*' for any command)")
        if fault.times is not None and fault.times < 1:
            raise ValueError("times is a positive count, or None for every time")
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(
        self, protocol: str, command: str, reply: str | None = None, times: int | None = 1
    ) -> Fault:
        """Answer ``command`` with ``reply`` (``NO ...``/``BAD ...``, ``-ERR ...``, ``451 ...``)."""
        proto = protocol.lower()
        if proto not in PROTOCOLS:
            raise ValueError(f"fault protocol must be one of {', '.join(PROTOCOLS)}")
        text = DEFAULT_REPLIES[proto] if reply is None else _check_reply(proto, reply)
        return self._add(Fault(proto, command, FaultKind.FAIL, reply=text, times=times))

    def delay(self, protocol: str, command: str, seconds: float, times: int | None = 1) -> Fault:
        """Wait ``seconds`` before running ``command``."""
        if seconds < 0:
            raise ValueError("a delay is zero seconds or more")
        return self._add(Fault(protocol, command, FaultKind.DELAY, seconds=seconds, times=times))

    def drop(
        self, protocol: str, command: str, after_bytes: int | None = None, times: int | None = 1
    ) -> Fault:
        """Close the connection on ``command``, optionally after sending ``after_bytes``."""
        if after_bytes is not None and after_bytes < 0:
            raise ValueError("after_bytes is zero or more")
        return self._add(
            Fault(protocol, command, FaultKind.DROP, after_bytes=after_bytes, times=times)
        )

    def remove(self, fault: Fault) -> None:
        """Withdraw one fault (no error if it already ran out)."""
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        """The faults still waiting to fire, in the order they were added."""
        with self._lock:
            return list(self._faults)

    def check(self, protocol: str, command: str) -> Fault | None:
        """The fault to apply to this command now, if any (and count it)."""
        if not self._faults:
            return None
        command = command.upper()
        with self._lock:
            for fault in self._faults:
                if fault.protocol == protocol and fault.command in (command, "*"):
                    fault.hits += 1
                    if fault.times is not None and fault.hits >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None
