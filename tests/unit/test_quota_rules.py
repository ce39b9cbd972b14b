"""Dovecot's quota rules per mailbox: relative limits (``+``/``-``, percentages of the ``*``
rule), ``ignore``, wildcards, the order of ``quota_rule``, ``quota_rule2`` ..., and the policy
counting only the mailboxes that count and checking a save against its mailbox's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsrv.auth import UsersFile
from mailsrv.config import Config
from mailsrv.quota import QuotaPolicy
from mailsrv.quota_rules import QuotaLimits, QuotaRules, parse_quota_rule, rules_from_fields
from mailsrv.store.base import OverQuota, StoreBusy
from mailsrv.store.memory import MemoryStore
from mailsrv.store.quota_lock import LOCK_NAME, QuotaFileLock

M = 1 << 20


def rules(*given: str) -> QuotaRules:
    out = QuotaRules()
    for rule in given:
        out = parse_quota_rule(rule, out)
    return out


@pytest.mark.parametrize(
    ("given", "mailbox", "expected"),
    [
        (("*:storage=1G", "Trash:storage=+100M"), "Trash", QuotaLimits((1 << 30) + 100 * M)),
        (("*:storage=1G", "Trash:storage=+100M"), "INBOX", QuotaLimits(1 << 30)),
        (("*:storage=1G", "Trash:storage=100M"), "Trash", QuotaLimits((1 << 30) + 100 * M)),
        (("*:storage=100M", "Trash:storage=-10M"), "Trash", QuotaLimits(90 * M)),
        (("*:storage=100M", "Trash:storage=+10%%"), "Trash", QuotaLimits(110 * M)),
        (("*:storage=100M", "Trash:storage=+10%"), "Trash", QuotaLimits(110 * M)),
        (("*:storage=100M:messages=10", "Trash:messages=+5"), "Trash", QuotaLimits(100 * M, 15)),
        (("*:storage=1M", "Trash:ignore"), "Trash", QuotaLimits()),
        (("*:storage=1M", "Archive/*:storage=+1M"), "Archive/2024", QuotaLimits(2 * M)),
        (("*:storage=1M", "Archive/*:storage=+1M"), "Archive", QuotaLimits(M)),
        (("*:storage=1M", "Sp?m:ignore"), "Spam", QuotaLimits()),
        (("Trash:storage=+100M",), "Trash", QuotaLimits()),  # relative to no limit: none
        (("*:storage=1M", "Trash:storage=+1M", "*:storage=2M"), "Trash", QuotaLimits(3 * M)),
        (("*:storage=1M", "Trash:storage=+1M", "Trash:messages=+2"), "Trash", QuotaLimits(2 * M)),
        (("*:storage=1M", "Trash:storage=+1M", "Trash:ignore"), "Trash", QuotaLimits()),
        (("*:storage=1M", "Trash:nonsense"), "Trash", QuotaLimits(M)),
    ],
)
def test_limits_for_a_mailbox(given: tuple[str, ...], mailbox: str, expected: QuotaLimits) -> None:
    assert rules(*given).limits_for(mailbox) == expected


def test_first_matching_rule_wins_and_ignore_means_not_counted() -> None:
    r = rules("*:storage=1M", "Junk:ignore", "J*:storage=+1M")
    assert not r.counted("Junk") and r.counted("Jobs") and r.counted("INBOX")
    assert r.limits_for("Jobs") == QuotaLimits(2 * M)
    assert r.limits == QuotaLimits(M), "what GETQUOTA reports: the * rule"


def test_extra_fields_in_dovecots_order() -> None:
    fields = {
        "userdb_quota_rule3": "SPAM:ignore",
        "userdb_quota_rule": "*:storage=10M",
        "userdb_quota_rule2": "Trash:storage=+10%%",
        "userdb_home": "/x",
    }
    r = rules_from_fields(fields, QuotaRules())
    assert r.limits == QuotaLimits(10 * M)
    assert r.limits_for("Trash") == QuotaLimits(11 * M)
    assert not r.counted("SPAM")


async def test_policy_counts_and_checks_per_mailbox() -> None:
    store = MemoryStore()
    policy = QuotaPolicy(Config(), store, UsersFile(None))
    policy.set("alice", storage=100, rules=["Trash:bytes=+50", "Spam:ignore"])
    await store.ensure_user("alice")
    await store.create_folder("alice", "Spam")  # Trash comes with a new user
    await store.deliver("alice", b"x" * 80, "Spam")  # not counted
    assert (await policy.usage("alice")).octets == 0
    await store.deliver("alice", b"x" * 90)
    assert (await policy.usage("alice")).octets == 90
    with pytest.raises(OverQuota):
        await policy.check("alice", 20)  # 110 > 100
    await policy.check("alice", 20, folder="Trash")  # 110 <= 150
    await policy.check("alice", 10**6, folder="Spam")  # not limited
    with pytest.raises(OverQuota):
        await policy.reserve(["alice"], 61, folder="Trash")
    with await policy.reserve(["alice"], 60, folder="Trash"):
        pass


async def test_quota_file_lock_excludes_other_holders_and_gives_up_in_time(
    tmp_path: Path,
) -> None:
    """The lock file is held against any other open of it (another process, another server
    of this one); a save that cannot get it in time fails as busy, not over quota."""
    path = tmp_path / LOCK_NAME
    held = await QuotaFileLock.acquire(path)
    with pytest.raises(StoreBusy):
        await QuotaFileLock.acquire(path, wait=0.05)
    held.release()
    held.release()  # twice is harmless
    again = await QuotaFileLock.acquire(path, wait=0.05)
    again.release()
    with pytest.raises(FileNotFoundError):  # no mailbox yet: the caller goes on without
        await QuotaFileLock.acquire(tmp_path / "nobody" / LOCK_NAME)
