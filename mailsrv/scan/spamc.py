"""The spamc protocol, as spamd (SpamAssassin) and rspamd speak it: ``REPORT`` and ``PING``.

A request is a command line (``REPORT SPAMC/1.5``), header lines (``Content-length``), a blank
line and the message; spamd answers ``SPAMD/1.1 0 EX_OK``, a ``Spam: True ; 1000.0 / 5.0``
header and the textual report, whose table lists each rule that fired with its score and
description, then closes. The request and reply functions are sans-I/O; ``check`` and ``ping``
talk to a daemon.
"""

from __future__ import annotations

import re

from mailsrv.scan.endpoints import Endpoint, EngineError, exchange
from mailsrv.scan.verdict import Rule, SpamCheck, safe_name, safe_text

PROTOCOL = "SPAMC/1.5"
#: A report is a few KiB; anything past this is not spamd.
MAX_REPLY = 256 * 1024

_STATUS_LINE = re.compile(r"SPAMD/\d+\.\d+ (\d+) ?(.*)\Z")
_SPAM_FIELD = re.compile(r"(True|False|Yes|No)\s*;\s*(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)\Z")
_RULE_LINE = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s+(\S+)\s*(.*)\Z")
#: Rules read from one report; SpamAssassin rarely fires more than a few dozen.
MAX_RULES = 100


def report_request(data: bytes) -> bytes:
    """The request head for ``REPORT`` of ``data`` (the message follows it)."""
    return f"REPORT {PROTOCOL}\r\nContent-length: {len(data)}\r\n\r\n".encode("ascii")


def ping_request() -> bytes:
    return f"PING {PROTOCOL}\r\n\r\n".encode("ascii")


def _head(reply: bytes) -> tuple[dict[str, str], bytes]:
    """The reply's header fields (lower-case names) and its body; ``EngineError`` unless the
    status line is spamd's with code 0."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = _STATUS_LINE.match(lines[0])
    if status is None:
        raise EngineError(f"not a spamd reply: {safe_text(lines[0], 60)!r}")
    if status.group(1) != "0":
        raise EngineError(f"spamd answered {status.group(1)} {safe_text(status.group(2), 60)}")
    fields = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip().lower()] = value.strip()
    if not sep:
        raise EngineError("spamd's reply ended inside its header")
    return fields, body


def parse_report(reply: bytes, threshold: float) -> SpamCheck:
    """A ``REPORT`` reply as a verdict; at or above ``threshold`` it is spam."""
    fields, body = _head(reply)
    spam = _SPAM_FIELD.match(fields.get("spam", ""))
    if spam is None:
        raise EngineError("spamd's reply has no Spam: score / threshold field")
    length = fields.get("content-length")
    if length is not None and (not length.isdigit() or int(length) != len(body)):
        raise EngineError("spamd's reply is shorter or longer than its Content-length")
    score = float(spam.group(2))
    rules = report_rules(body.decode("utf-8", "replace"))
    return SpamCheck("yes" if score >= threshold else "no", score, threshold, rules)


def report_rules(report: str) -> tuple[Rule, ...]:
    """The rules in the report's table (after the ``---- ----`` line); a description wrapped
    onto an indented line is joined back."""
    rules: list[Rule] = []
    in_table = False
    for line in report.splitlines():
        if not in_table:
            in_table = line.startswith("----")
            continue
        if not line.strip():
            break
        match = _RULE_LINE.match(line)
        name = safe_name(match.group(2)) if match else None
        if match and name and not line.startswith("      "):
            if len(rules) < MAX_RULES:
                rules.append(Rule(name, float(match.group(1)), safe_text(match.group(3))))
        elif rules:
            last = rules[-1]
            rules[-1] = Rule(last.name, last.score, safe_text(f"{last.description} {line}"))
    return tuple(rules)


def parse_pong(reply: bytes) -> None:
    """Raises ``EngineError`` unless ``reply`` is spamd's ``SPAMD/1.5 0 PONG``."""
    status = _STATUS_LINE.match(reply.split(b"\r\n", 1)[0].decode("latin-1"))
    if status is None or status.groups() != ("0", "PONG"):
        raise EngineError("spamd did not answer PING with PONG")


async def check(endpoint: Endpoint, data: bytes, threshold: float) -> SpamCheck:
    """Ask spamd for its ``REPORT`` on ``data``."""
    reply = await exchange(endpoint, (report_request(data), data), MAX_REPLY)
    return parse_report(reply, threshold)


async def ping(endpoint: Endpoint) -> None:
    parse_pong(await exchange(endpoint, (ping_request(),), 1024))
