"""Fault injection for tests: make the server fail, delay or drop on a chosen command.

``server.faults.fail("imap", "FETCH", "NO [UNAVAILABLE] try later", times=1)`` makes the next
IMAP FETCH answer with that reply (the tag is added by the server). Listeners call ``check``
before running a command and act on the ``Fault`` it returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def _add(self, fault: Fault) -> Fault:
        fault.protocol = fault.protocol.lower()
        fault.command = fault.command.upper()
        self._faults.append(fault)
        return fault

    def fail(self, protocol: str, command: str, reply: str, times: int | None = 1) -> Fault:
        """Answer ``command`` with ``reply`` (``NO ...``/``BAD ...``, ``-ERR ...``, ``451 ...``)."""
        return self._add(Fault(protocol, command, FaultKind.FAIL, reply=reply, times=times))

    def delay(self, protocol: str, command: str, seconds: float, times: int | None = 1) -> Fault:
        return self._add(Fault(protocol, command, FaultKind.DELAY, seconds=seconds, times=times))

    def drop(
        self, protocol: str, command: str, after_bytes: int | None = None, times: int | None = 1
    ) -> Fault:
        """Close the connection on ``command``, optionally after sending ``after_bytes``."""
        return self._add(
            Fault(protocol, command, FaultKind.DROP, after_bytes=after_bytes, times=times)
        )

    def clear(self) -> None:
        self._faults.clear()

    def check(self, protocol: str, command: str) -> Fault | None:
        """The fault to apply to this command now, if any (and count it)."""
        if not self._faults:
            return None
        command = command.upper()
        for fault in self._faults:
            if fault.protocol == protocol and fault.command in (command, "*"):
                fault.hits += 1
                if fault.times is not None and fault.hits >= fault.times:
                    self._faults.remove(fault)
                return fault
        return None
