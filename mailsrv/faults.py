"""Fault injection for tests: make the server fail, delay or drop on a chosen command.

``server.faults.fail("imap", "FETCH", "NO [UNAVAILABLE] try later", times=1)`` makes the next
IMAP FETCH answer with that reply (the tag is added by the server). Listeners call ``check``
before running a command and act on the ``Fault`` it returns. Tests add faults from their own
thread while the server's loop checks them, so the list is guarded by a lock (taken only when a
fault is set: with none, ``check`` is one attribute test).

A fault can be narrowed to one user (``user=``: the session's login, so nothing before it) and
to the command's argument (``match=``: a case-insensitive glob such as ``"*bounce-*@example.com*"``
on SMTP ``RCPT``'s ``TO:<...>``, POP3's arguments, or an IMAP command's mailbox name). Every
fault has an ``id`` (for the REST API) and counts its ``hits``.

``tls("imaps", "expired")`` is a handshake fault, not a command's: the service's TLS context
(``mailsrv.tls_faults``) asks ``tls_certificate`` on each ClientHello which certificate to show.

Under ``--workers`` each worker has its own injector, and a fault armed through the console's
API is in each of them; its ``shared`` count (``SharedCount``, from
``mailsrv.workers.shared_faults``) makes ``times`` count once over all the workers: before a
fault fires, the worker claims a hit there, and a claim beyond ``times`` is refused.
"""

from __future__ import annotations

import enum
import fnmatch
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

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

#: The command a downgrading middlebox strips, and how it refuses it, per protocol.
STARTTLS_REFUSALS: dict[str, tuple[str, str]] = {
    "imap": ("STARTTLS", "BAD STARTTLS not available"),
    "pop3": ("STLS", "-ERR STLS is not available here"),
    "smtp": ("STARTTLS", "502 5.5.1 STARTTLS not available"),
}


class FaultKind(enum.Enum):
    FAIL = "fail"  # answer with ``reply`` instead of running the command
    DELAY = "delay"  # wait ``seconds`` first, then run it
    DROP = "drop"  # close the connection (after ``after_bytes`` of the response, if set)
    STRIP_STARTTLS = "strip-starttls"  # STARTTLS/STLS not offered, and refused with ``reply``
    TLS = "tls"  # the TLS handshake presents a faulty ``certificate``


#: The TLS services a certificate fault can be set on: the implicit-TLS ports and those that
#: upgrade with STARTTLS/STLS (the names of ``MailServer.ports``).
TLS_SERVICES = ("imaps", "pop3s", "smtps", "imap", "pop3", "submission", "smtp")
#: The faulty certificates a TLS fault can present (``mailsrv.tls_faults`` makes them).
TLS_CERTIFICATES = (
    "expired",
    "not-yet-valid",
    "wrong-host",
    "self-signed",
    "untrusted-ca",
    "weak-key",
)


class SharedCount(Protocol):
    """A fault's hits counted over every worker (``mailsrv.workers.shared_faults``)."""

    def claim(self) -> int | None:
        """Count one more hit if the fault may still fire: the hits then; None when it is
        spent or withdrawn (in whichever worker)."""

    def hits(self) -> int | None:
        """The hits so far; None when the fault is spent or withdrawn."""


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
    user: str | None = None  # only this user's sessions (None: everyone, logged in or not)
    match: str | None = None  # a glob on the command's argument (None: any argument)
    certificate: str = ""  # TLS faults: which faulty certificate (one of TLS_CERTIFICATES)
    id: int = 0  # given by the injector
    #: Under ``--workers``: the hits of every worker (None: this injector's alone).
    shared: SharedCount | None = field(default=None, compare=False, repr=False)

    def applies(self, protocol: str, command: str, argument: str, user: str | None) -> bool:
        """Whether this fault fires on ``command`` (upper case) with ``argument`` for ``user``."""
        if self.kind is FaultKind.TLS:
            return False  # a handshake fault, never a command's
        if self.protocol != protocol or self.command not in (command, "*"):
            return False
        if self.user is not None and self.user != user:
            return False
        return self.match is None or fnmatch.fnmatchcase(argument.lower(), self.match.lower())


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
        self._next_id = 1
        #: Set by the server: makes a faulty certificate ahead of its first handshake.
        self.prepare_certificate: Callable[[str], object] | None = None
        #: Set by the ``--workers`` console: each fault's ``shared`` count, made as it is added
        #: (it may refuse the fault with a ``ValueError``).
        self.share: Callable[[Fault], SharedCount] | None = None

    def _add(self, fault: Fault) -> Fault:
        fault.protocol = fault.protocol.lower()
        fault.command = " ".join(fault.command.upper().split())
        if fault.kind is not FaultKind.TLS and fault.protocol not in PROTOCOLS:
            raise ValueError(f"fault protocol must be one of {', '.join(PROTOCOLS)}")
        if not fault.command:
            raise ValueError("a fault needs a command name (or '*' for any command)")
        if fault.times is not None and fault.times < 1:
            raise ValueError("times is a positive count, or None for every time")
        if fault.user is not None and not fault.user:
            raise ValueError("user is a user name, or None for every session")
        if fault.match is not None and ("\r" in fault.match or "\n" in fault.match):
            raise ValueError("match is one line: no CR or LF in it")
        with self._lock:
            fault.id, self._next_id = self._next_id, self._next_id + 1
            if self.share is not None:
                fault.shared = self.share(fault)
            self._faults.append(fault)
        return fault

    def adopt(self, fault: Fault, fault_id: int, shared: SharedCount) -> None:
        """Add ``fault`` (made by another injector, from its description) with the ``id`` and
        ``shared`` count it has in every worker; the ids given from now on are higher (a
        replaced console goes on from its faults)."""
        with self._lock:
            fault.id, fault.shared = fault_id, shared
            self._next_id = max(self._next_id, fault_id + 1)
            self._faults.append(fault)

    def skip_ids(self, last_id: int) -> None:
        """Give only ids above ``last_id`` from now on."""
        with self._lock:
            self._next_id = max(self._next_id, last_id + 1)

    def _take(self, fault: Fault) -> bool:
        """Count a hit of ``fault``, which applies now (under the lock); False when it is spent
        or withdrawn in another worker (then it is dropped here too)."""
        if fault.shared is None:
            fault.hits += 1
        else:
            hits = fault.shared.claim()
            if hits is None:
                self._faults.remove(fault)
                return False
            fault.hits = hits
        if fault.times is not None and fault.hits >= fault.times:
            self._faults.remove(fault)
        return True

    def fail(
        self,
        protocol: str,
        command: str,
        reply: str | None = None,
        times: int | None = 1,
        *,
        user: str | None = None,
        match: str | None = None,
    ) -> Fault:
        """Answer ``command`` with ``reply`` (``NO ...``/``BAD ...``, ``-ERR ...``, ``451 ...``)."""
        proto = protocol.lower()
        if proto not in PROTOCOLS:
            raise ValueError(f"fault protocol must be one of {', '.join(PROTOCOLS)}")
        text = DEFAULT_REPLIES[proto] if reply is None else _check_reply(proto, reply)
        fault = Fault(
            proto, command, FaultKind.FAIL, reply=text, times=times, user=user, match=match
        )
        return self._add(fault)

    def delay(
        self,
        protocol: str,
        command: str,
        seconds: float,
        times: int | None = 1,
        *,
        user: str | None = None,
        match: str | None = None,
    ) -> Fault:
        """Wait ``seconds`` before running ``command``."""
        if seconds < 0:
            raise ValueError("a delay is zero seconds or more")
        kind = FaultKind.DELAY
        fault = Fault(protocol, command, kind, seconds=seconds, times=times, user=user, match=match)
        return self._add(fault)

    def drop(
        self,
        protocol: str,
        command: str,
        after_bytes: int | None = None,
        times: int | None = 1,
        *,
        user: str | None = None,
        match: str | None = None,
    ) -> Fault:
        """Close the connection on ``command``, optionally after sending ``after_bytes``."""
        if after_bytes is not None and after_bytes < 0:
            raise ValueError("after_bytes is zero or more")
        kind = FaultKind.DROP
        return self._add(
            Fault(
                protocol,
                command,
                kind,
                after_bytes=after_bytes,
                times=times,
                user=user,
                match=match,
            )
        )

    def strip_starttls(self, protocol: str, *, user: str | None = None) -> Fault:
        """Act as a downgrading middlebox on ``protocol`` (imap, pop3, smtp): CAPABILITY, CAPA
        and EHLO no longer offer STARTTLS/STLS, and the command is refused, until removed."""
        proto = protocol.lower()
        if proto not in STARTTLS_REFUSALS:
            raise ValueError(
                f"strip-starttls protocol must be one of {', '.join(STARTTLS_REFUSALS)}"
            )
        command, reply = STARTTLS_REFUSALS[proto]
        kind = FaultKind.STRIP_STARTTLS
        return self._add(Fault(proto, command, kind, reply=reply, times=None, user=user))

    def tls(self, protocol: str, certificate: str, times: int | None = None) -> Fault:
        """Make ``protocol``'s TLS (an implicit-TLS port such as ``imaps``, or the STARTTLS/STLS
        upgrade of ``imap``, ``pop3``, ``submission``, ``smtp``) present a faulty
        ``certificate`` (one of ``TLS_CERTIFICATES``) to every handshake, until removed (or for
        ``times`` handshakes). The certificate is made now, once per server."""
        proto, cert = protocol.lower(), certificate.lower()
        if proto not in TLS_SERVICES:
            raise ValueError(f"a tls fault's protocol must be one of {', '.join(TLS_SERVICES)}")
        if cert not in TLS_CERTIFICATES:
            raise ValueError(f"certificate must be one of {', '.join(TLS_CERTIFICATES)}")
        if self.prepare_certificate is None:
            raise ValueError("TLS is off on this server: there is no handshake to break")
        self.prepare_certificate(cert)
        kind = FaultKind.TLS
        return self._add(Fault(proto, "TLS", kind, times=times, certificate=cert))

    def tls_certificate(self, service: str) -> str | None:
        """The faulty certificate a handshake on ``service`` presents now, if any (and count
        the handshake as a hit)."""
        if not self._faults:
            return None
        with self._lock:
            for fault in tuple(self._faults):
                if fault.kind is FaultKind.TLS and fault.protocol == service and self._take(fault):
                    return fault.certificate
        return None

    def starttls_stripped(self, protocol: str, user: str | None = None) -> bool:
        """Whether a strip-starttls fault hides STARTTLS/STLS from this session's capabilities
        (not counted as a hit: only the refused command is)."""
        if not self._faults:
            return False
        with self._lock:
            return any(
                f.kind is FaultKind.STRIP_STARTTLS
                and f.protocol == protocol
                and (f.user is None or f.user == user)
                for f in self._faults
            )

    def remove(self, fault: Fault) -> None:
        """Withdraw one fault (no error if it already ran out)."""
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def remove_id(self, fault_id: int) -> bool:
        """Withdraw the fault with this ``id``; False when there is none (any more)."""
        with self._lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    self._faults.remove(fault)
                    return fault.shared is None or fault.shared.hits() is not None
        return False

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def armed(self) -> bool:
        """Whether any fault waits: when not, a command's hook has nothing to look at (the
        adapters skip building its argument)."""
        return bool(self._faults)

    @property
    def active(self) -> list[Fault]:
        """The faults still waiting to fire, in the order they were added (with the hits of
        every worker, for those counted over them)."""
        with self._lock:
            for fault in tuple(self._faults):
                if fault.shared is not None:
                    hits = fault.shared.hits()
                    if hits is None:
                        self._faults.remove(fault)
                    else:
                        fault.hits = hits
            return list(self._faults)

    def check(
        self, protocol: str, command: str, argument: str = "", user: str | None = None
    ) -> Fault | None:
        """The fault to apply to this command now, if any (and count it): ``argument`` is the
        command's argument text, ``user`` the session's login (None before it)."""
        if not self._faults:
            return None
        command = command.upper()
        with self._lock:
            for fault in tuple(self._faults):
                if fault.applies(protocol, command, argument, user) and self._take(fault):
                    return fault
        return None
