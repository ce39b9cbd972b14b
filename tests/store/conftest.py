"""Fixtures for the store suite: every contract test runs on MemoryStore and MaildirStore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailsrv.store.base import Store
from mailsrv.store.maildir import MaildirStore
from mailsrv.store.memory import MemoryStore


@pytest.fixture(params=["memory", "maildir"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else MaildirStore(tmp_path / "mail")
    await s.ensure_user("alice")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def maildir(tmp_path: Path) -> AsyncIterator[MaildirStore]:
    s = MaildirStore(tmp_path / "mail")
    await s.ensure_user("alice")
    try:
        yield s
    finally:
        await s.close()


def message(n: int = 1, body: bytes = b"hello") -> bytes:
    return b"From: a@example.org\nSubject: test %d\n\n%s\n" % (n, body)
