"""User, folder and recipient names can never reach outside the user's Maildir root."""

from __future__ import annotations

import pytest

from tests.fuzz import (
    BY_NAME,
    check_folder_name_mapping,
    check_smtp_recipient,
    check_user_name_safe,
    property_test,
)

HOSTILE = [
    "..",
    "../bob",
    "~bob",
    "#shared/bob",
    "/etc/passwd",
    "a/../../b",
    "INBOX/../..",
    "a\x00b",
    "x" * 300,
    "a/" * 40,
    ".",
    ".hidden",
]


def test_folder_names_map_inside_the_root() -> None:
    property_test(BY_NAME["folder-names"], 300)()


def test_user_names_are_one_path_component() -> None:
    property_test(BY_NAME["user-names"], 300)()


def test_smtp_rcpt_resolves_only_to_valid_local_users() -> None:
    property_test(BY_NAME["smtp-rcpt"], 100)()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names(name: str) -> None:
    check_user_name_safe(name)
    check_folder_name_mapping(name, name.encode("utf-8", "replace"))


@pytest.mark.parametrize("wire", [b"&AC4ALg-", b"&AC8-etc", b"a/&AC4ALg-/b", b"&AFwALgAu-", b"&-"])
def test_mutf7_tricks(wire: bytes) -> None:
    check_folder_name_mapping("x", wire)


@pytest.mark.parametrize(
    "address", ["../bob@localhost", "bob/../x@localhost", "a@evil.example", "\x00@localhost"]
)
@pytest.mark.parametrize("dev", [False, True])
def test_hostile_recipients(address: str, dev: bool) -> None:
    check_smtp_recipient(address, dev)
