"""Subscriptions, on MemoryStore and MaildirStore alike: a name stays subscribed when its folder
is deleted (RFC 9051 §6.3.7), can be unsubscribed then, and CREATE may leave a folder
unsubscribed (what IMAP CREATE does)."""

from __future__ import annotations

import pytest

from mailsrv.store.base import DEFAULT_SPECIAL_FOLDERS, INBOX, NoSuchFolder, Store

DEFAULTS = sorted([INBOX, *DEFAULT_SPECIAL_FOLDERS.values()])


async def test_subscriptions_outlive_their_folder(store: Store) -> None:
    assert await store.list_subscriptions("alice") == DEFAULTS
    await store.create_folder("alice", "Work")
    await store.create_folder("alice", "Work/Old", subscribe=False)
    folders = {f.name: f for f in await store.list_folders("alice")}
    assert folders["Work"].subscribed and not folders["Work/Old"].subscribed
    await store.delete_folder("alice", "Work")
    assert "Work" in await store.list_subscriptions("alice")
    assert "Work/Old" not in await store.list_subscriptions("alice")
    await store.set_subscribed("alice", "Work", False)  # its folder is gone
    assert await store.list_subscriptions("alice") == DEFAULTS
    await store.set_subscribed("alice", "Never", False)
    with pytest.raises(NoSuchFolder):
        await store.set_subscribed("alice", "Never", True)
    await store.set_subscribed("alice", "Work/Old", True)
    assert "Work/Old" in await store.list_subscriptions("alice")


async def test_rename_carries_subscriptions(store: Store) -> None:
    await store.create_folder("alice", "A")
    await store.create_folder("alice", "A/B")
    await store.set_subscribed("alice", "A", False)
    await store.rename_folder("alice", "A", "C")
    subs = await store.list_subscriptions("alice")
    assert "C/B" in subs and "C" not in subs and "A/B" not in subs
