"""Quota limits (RFC 9208): Dovecot's quota rules, the users file's extra fields (kept when
``mailsrv user`` rewrites the file), the order of the sources, and the check before a save."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mailsrv.auth import UsersFile
from mailsrv.config import Config, Limits
from mailsrv.quota import QuotaLimits, QuotaPolicy, QuotaRules, parse_quota_rule, rules_from_fields
from mailsrv.store.base import OverQuota
from mailsrv.store.memory import MemoryStore

NONE = QuotaLimits()


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("*:storage=1G", QuotaLimits(storage=1 << 30)),
        ("*:storage=100", QuotaLimits(storage=100 * 1024)),  # Dovecot: KiB without a unit
        ("*:storage=512k", QuotaLimits(storage=512 * 1024)),
        ("*:storage=10M:messages=50", QuotaLimits(10 << 20, 50)),
        ("*:bytes=1000", QuotaLimits(storage=1000)),
        ("*:messages=3", QuotaLimits(messages=3)),
        ("*:storage=0", NONE),
        ("garbage", NONE),
    ],
)
def test_quota_rules(rule: str, expected: QuotaLimits) -> None:
    assert parse_quota_rule(rule, QuotaRules()) == QuotaRules(expected)


def test_rules_from_extra_fields_apply_in_order_over_the_default() -> None:
    base = QuotaLimits(storage=5, messages=7)
    fields = {"userdb_quota_rule": "*:storage=1M", "userdb_quota_rule2": "*:messages=9"}
    assert rules_from_fields(fields, QuotaRules(base)).limits == QuotaLimits(1 << 20, 9)
    assert rules_from_fields({"userdb_home": "/x"}, QuotaRules(base)) == QuotaRules(base)


def test_users_file_extra_fields_and_rewrites_keep_them(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(
        "alice:{PLAIN}pw::::::userdb_quota_rule=*:storage=2M userdb_quota_rule2=*:messages=4\n"
        "bob:{PLAIN}pw\n"
    )
    users = UsersFile(path)
    assert users.extra_fields("alice") == {
        "userdb_quota_rule": "*:storage=2M",
        "userdb_quota_rule2": "*:messages=4",
    }
    assert users.extra_fields("bob") == {} and users.extra_fields("nobody") == {}
    users.set("carol", "pw")
    users.delete("bob")
    assert "alice:{PLAIN}pw::::::userdb_quota_rule=*:storage=2M" in path.read_text()
    assert UsersFile(path).extra_fields("alice")["userdb_quota_rule"] == "*:storage=2M"


async def test_policy_sources_and_check(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("alice:{PLAIN}pw::::::userdb_quota_rule=*:bytes=100:messages=2\n")
    store = MemoryStore()
    config = Config(limits=Limits(quota_storage=1000, quota_messages=0))
    policy = QuotaPolicy(config, store, UsersFile(path))
    assert policy.limits("bob") == QuotaLimits(storage=1000)  # the [limits] default
    assert policy.limits("alice") == QuotaLimits(100, 2)  # the users file over it
    policy.set("alice", messages=1)
    assert policy.limits("alice") == QuotaLimits(None, 1)  # the fixture over both
    await policy.check("nobody-yet", 999)  # a user without a mailbox uses nothing
    await store.ensure_user("alice")
    await policy.check("alice", 10)
    await store.deliver("alice", b"Subject: x\r\n\r\nhi\r\n")
    with pytest.raises(OverQuota) as exc:
        await policy.check("alice", 1)
    assert exc.value.resource == "MESSAGE"
    policy.clear()
    with pytest.raises(OverQuota) as exc:
        await policy.check("alice", 100)
    assert exc.value.resource == "STORAGE"
    await policy.check("alice", 80)
    assert (await policy.usage("alice")).messages == 1


async def test_reserve_holds_the_room_until_the_save_is_done() -> None:
    """Two saves at once for a user with room for one: the second waits for the first and
    then sees it, instead of both passing the check on the same free room."""
    store = MemoryStore()
    await store.ensure_user("alice")
    policy = QuotaPolicy(Config(), store, UsersFile(None))
    policy.set("alice", messages=1)
    outcome: list[str] = []

    async def save(name: str) -> None:
        try:
            with await policy.reserve(["alice", "bob"], 10):
                await asyncio.sleep(0)  # the other save gets its turn to check meanwhile
                await store.deliver("alice", b"Subject: %s\r\n\r\nx\r\n" % name.encode())
                outcome.append(name)
        except OverQuota:
            outcome.append(f"{name} refused")

    await asyncio.gather(save("first"), save("second"))
    assert outcome == ["first", "second refused"]
    assert (await store.usage("alice")).messages == 1
    assert not policy._locks, "no lock is kept once nobody saves"
    with await policy.reserve(["bob"], 10**9):  # no limit: nothing to hold
        pass
