"""The test API's method names: one list for ``AsyncMailServer``, ``ThreadedMailServer`` and its
``.aio``, which all define each of these with the same parameters (tests/unit checks it)."""

from __future__ import annotations

#: The methods every face of the test server has (coroutines on ``AsyncMailServer`` and ``.aio``).
TEST_API: tuple[str, ...] = (
    "add_user",
    "deliver",
    "messages",
    "wait_for_messages",
    "folders",
    "create_folder",
    "bump_uidvalidity",
    "set_quota",
    "report",
    "reset",
)
