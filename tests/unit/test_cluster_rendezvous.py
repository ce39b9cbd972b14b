"""Rendezvous hashing: one user, one host, the same on every host; a host taken out moves
only its own users, and they spread over the others."""

from __future__ import annotations

from collections import Counter

import pytest

from mailsrv.cluster.rendezvous import check_backends, rank, weight
from mailsrv.config import ConfigError, load_config

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
USERS = [f"user{n}" for n in range(3000)]


def test_the_order_is_a_permutation_and_stable() -> None:
    for user in USERS[:50]:
        order = rank(user, HOSTS)
        assert sorted(order) == sorted(HOSTS)
        assert rank(user, list(reversed(HOSTS))) == order  # the list's order does not matter
        assert rank(user, HOSTS) == order


def test_the_weight_is_a_fixed_function_of_both() -> None:
    # Every host computes the same answer: nothing random, nothing per process.
    assert weight("127.0.0.2", "alice") == weight("127.0.0.2", "alice")
    assert weight("127.0.0.2", "alice") != weight("127.0.0.3", "alice")
    assert weight("a", "bc") != weight("ab", "c")


def test_users_spread_evenly() -> None:
    first = Counter(rank(user, HOSTS)[0] for user in USERS)
    assert set(first) == set(HOSTS)
    for count in first.values():
        assert abs(count - len(USERS) / 3) < len(USERS) * 0.05


def test_removing_a_host_moves_only_its_users() -> None:
    before = {user: rank(user, HOSTS)[0] for user in USERS}
    survivors = [h for h in HOSTS if h != "127.0.0.3"]
    after = {user: rank(user, survivors)[0] for user in USERS}
    moved = {user for user in USERS if before[user] != after[user]}
    assert moved == {user for user in USERS if before[user] == "127.0.0.3"}
    # ... each to the next host in its own order, so both survivors take some.
    for user in moved:
        assert after[user] == rank(user, HOSTS)[1]
    assert len({after[user] for user in moved}) == 2


def test_backends_must_be_distinct_canonical_addresses() -> None:
    assert check_backends(["127.0.0.2", "::1"]) is None
    assert check_backends([]) is None
    assert "IP addresses" in (check_backends(["mail1.example"]) or "")
    assert "twice" in (check_backends(["127.0.0.2", "127.0.0.2"]) or "")
    assert "canonical" in (check_backends(["0:0::1"]) or "")


def test_the_config_key_is_checked() -> None:
    assert load_config(cluster_backends=["127.0.0.2", "127.0.0.3"]).cluster_backends == (
        "127.0.0.2",
        "127.0.0.3",
    )
    with pytest.raises(ConfigError, match="cluster_backends must be IP addresses"):
        load_config(cluster_backends=["mail1"])
    with pytest.raises(ConfigError, match="cluster_backends must be a list of strings"):
        load_config(cluster_backends="127.0.0.2")
