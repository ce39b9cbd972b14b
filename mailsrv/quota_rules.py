"""Quota rules in Dovecot 2.3's syntax: what a user may keep, over all and per mailbox.

A rule is ``<mailbox mask>:<limit>[:<limit>...]``, or ``<mask>:ignore``. The ``*`` rule gives
the user's limits (``*:storage=1G:messages=1000``; ``storage`` counts KiB unless a unit
follows, ``bytes`` counts octets; 0 is no limit). A rule for other mailboxes (``Trash``,
``Archive/*``; ``*`` and ``?`` are wildcards, the first matching rule wins) changes the limits
that apply when saving *into* those mailboxes, and, as in Dovecot, its numbers are added to the
``*`` rule's whatever their sign: ``Trash:storage=+100M`` (or ``=100M``) lets saves into Trash
go 100 MiB further, ``=-10M`` stops them 10 MiB short, ``=10%`` (``10%%`` in a users file,
where ``%`` must be escaped) adds a tenth of the ``*`` limit. Usage stays the user's total:
Dovecot's example, 1 GiB with ``Trash:storage=+100M``, still lets a user with 1 GiB in Trash
save 100 MiB into Trash, and nothing elsewhere. A relative rule over no ``*`` limit gives none.
``ignore`` leaves the mailboxes out: their messages are not counted, and saves into them are
not limited. Rules are read in order (``quota_rule``, ``quota_rule2``, ...); a later rule for
the same mask, or for ``*``, changes the limits it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_LIMIT = re.compile(r"(storage|bytes|messages)=([+-]?)(\d+)(%{1,2}|[bkmgt]?)", re.IGNORECASE)
_FIELD = re.compile(r"(userdb_)?quota_rule(\d*)")


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """Octets and messages a user may keep; None is no limit."""

    storage: int | None = None
    messages: int | None = None

    @property
    def limited(self) -> bool:
        return self.storage is not None or self.messages is not None


@dataclass(frozen=True, slots=True)
class Offset:
    """A mailbox rule's change to one ``*`` limit: ``amount`` (octets or messages, signed), or
    ``percent`` of the ``*`` limit."""

    amount: int = 0
    percent: int = 0

    def applied(self, limit: int | None) -> int | None:
        if limit is None:
            return None
        out = limit + self.amount + limit * self.percent // 100
        return max(out, 0)


@dataclass(frozen=True, slots=True)
class MailboxRule:
    """The rule of the mailboxes ``mask`` matches."""

    mask: str
    ignore: bool = False
    storage: Offset | None = None
    messages: Offset | None = None

    def matches(self, mailbox: str) -> bool:
        return _mask_pattern(self.mask).fullmatch(mailbox) is not None


@dataclass(frozen=True, slots=True)
class QuotaRules:
    """A user's ``*`` limits and mailbox rules."""

    limits: QuotaLimits = QuotaLimits()
    mailboxes: tuple[MailboxRule, ...] = ()

    @property
    def limited(self) -> bool:
        """Whether any save may be refused (no limit anywhere: no check, no lock)."""
        return self.limits.limited

    def rule_for(self, mailbox: str) -> MailboxRule | None:
        return next((r for r in self.mailboxes if r.matches(mailbox)), None)

    def counted(self, mailbox: str) -> bool:
        """Whether the mailbox's messages count against the quota (no ``ignore`` rule)."""
        rule = self.rule_for(mailbox)
        return rule is None or not rule.ignore

    def limits_for(self, mailbox: str) -> QuotaLimits:
        """The limits a save into ``mailbox`` must stay within (none for an ignored one)."""
        rule = self.rule_for(mailbox)
        if rule is None:
            return self.limits
        if rule.ignore:
            return QuotaLimits()
        storage, messages = self.limits.storage, self.limits.messages
        if rule.storage is not None:
            storage = rule.storage.applied(storage)
        if rule.messages is not None:
            messages = rule.messages.applied(messages)
        return QuotaLimits(storage, messages)


def parse_quota_rule(rule: str, base: QuotaRules) -> QuotaRules:
    """``base`` with one Dovecot quota rule applied; a rule that says nothing is ignored."""
    where, _, spec = rule.strip().partition(":")
    if not where or not spec:
        return base
    if where == "*":
        return replace(base, limits=_default_limits(spec, base.limits))
    old = next((r for r in base.mailboxes if r.mask == where), None)
    new = _mailbox_rule(where, spec, old)
    if new is None:
        return base
    if old is None:
        return replace(base, mailboxes=(*base.mailboxes, new))
    return replace(base, mailboxes=tuple(new if r is old else r for r in base.mailboxes))


def rules_from_fields(fields: dict[str, str], base: QuotaRules) -> QuotaRules:
    """The rules a users-file line's extra fields give (``userdb_quota_rule``, ``...2``, ...),
    in Dovecot's order: ``quota_rule``, then ``quota_rule2``, ``quota_rule3`` ..."""
    found = [(m, k) for k in fields if (m := _FIELD.fullmatch(k)) is not None]
    out = base
    for _, key in sorted(found, key=lambda f: int(f[0].group(2) or 1)):
        out = parse_quota_rule(fields[key], out)
    return out


def _octets(key: str, number: int, unit: str) -> int:
    if unit:
        return number * _UNITS[unit.upper()]
    return number * (1 << 10 if key == "storage" else 1)


def _default_limits(spec: str, base: QuotaLimits) -> QuotaLimits:
    out = base
    for key, sign, number, unit in _LIMIT.findall(spec):
        if sign or unit.startswith("%"):
            continue  # the "*" rule is what the others are relative to
        key = key.lower()
        if key == "messages":
            out = replace(out, messages=int(number) or None)
        else:
            out = replace(out, storage=_octets(key, int(number), unit) or None)
    return out


def _mailbox_rule(mask: str, spec: str, old: MailboxRule | None) -> MailboxRule | None:
    if spec.strip().lower() == "ignore":
        return MailboxRule(mask, ignore=True)
    out = old if old is not None and not old.ignore else MailboxRule(mask)
    found = False
    for key, sign, number, unit in _LIMIT.findall(spec):
        found = True
        value = -int(number) if sign == "-" else int(number)
        key = key.lower()
        if unit.startswith("%"):
            offset = Offset(percent=value)
        else:
            offset = Offset(amount=value if key == "messages" else _octets(key, value, unit))
        is_count = key == "messages"
        out = replace(out, messages=offset) if is_count else replace(out, storage=offset)
    return out if found else None


@lru_cache(maxsize=256)
def _mask_pattern(mask: str) -> re.Pattern[str]:
    """Dovecot's wildcards: ``*`` any run of characters, ``?`` one character."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    return re.compile("".join(parts), re.DOTALL)
