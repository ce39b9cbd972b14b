"""LIST (SUBSCRIBED), RECURSIVEMATCH's CHILDINFO and LSUB over subscribed names whose folder is
gone or whose parent is not subscribed (RFC 5258 §3-5, RFC 3501 §6.3.9), as Dovecot answers;
the cases of imaptest's listext and subscribe groups."""

from __future__ import annotations

from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context

FOLDERS = [
    "test1",
    "test2",
    "test2/test1",
    "test3",
    "test4/test5",
    "test6",
    "test8/test8",
    "test8/test9",
]
SUBSCRIBED = ["test1", "test2/test1", "test6", "test8/test8", "test8/test9"]


async def _tree() -> Talker:
    """``m/...`` made by IMAP CREATE (which subscribes nothing), some subscribed, then ``m/test6``
    deleted: it stays subscribed."""
    store = MemoryStore()
    await store.ensure_user("ann")
    t = Talker(make_context(store))
    await t.login()
    for name in FOLDERS:
        assert b"c OK" in await t.talk(b"c CREATE m/%s\r\n" % name.encode())
    for name in SUBSCRIBED:
        assert b"s OK" in await t.talk(b"s SUBSCRIBE m/%s\r\n" % name.encode())
    assert await t.talk(b"d DELETE m/test6\r\n") == b"d OK Delete completed.\r\n"
    return t


async def test_list_subscribed_shows_a_gone_folder_as_nonexistent() -> None:
    t = await _tree()
    assert await t.talk(b'a LIST (SUBSCRIBED) "" m/*\r\n') == (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "m/test1"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "m/test2/test1"\r\n'
        b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" "m/test6"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "m/test8/test8"\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "m/test8/test9"\r\n'
        b"a OK List completed.\r\n"
    )
    # A plain LIST lists folders only; CREATE subscribed none of them.
    assert await t.talk(b'b LIST "" m/% RETURN (CHILDREN SUBSCRIBED)\r\n') == (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "m/test1"\r\n'
        b'* LIST (\\HasChildren) "/" "m/test2"\r\n'
        b'* LIST (\\HasNoChildren) "/" "m/test3"\r\n'
        b'* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "m/test4"\r\n'
        b'* LIST (\\NonExistent \\Noselect \\HasChildren) "/" "m/test8"\r\n'
        b"b OK List completed.\r\n"
    )
    # Unsubscribing the gone name works, and then it is not listed any more.
    assert await t.talk(b"c UNSUBSCRIBE m/test6\r\n") == b"c OK Unsubscribe completed.\r\n"
    assert await t.talk(b'd LIST (SUBSCRIBED) "" m/test6\r\n') == b"d OK List completed.\r\n"


async def test_recursivematch_childinfo_for_unmatched_subscribed_children() -> None:
    t = await _tree()
    assert await t.talk(
        b'a LIST (SUBSCRIBED RECURSIVEMATCH) "" m/test2% RETURN (CHILDREN)\r\n'
    ) == (
        b'* LIST (\\HasChildren) "/" "m/test2" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        b"a OK List completed.\r\n"
    )
    # m/test8/test9 does not match, so m/test8 gets CHILDINFO though m/test8/test8 is listed.
    assert await t.talk(b'b LIST (SUBSCRIBED RECURSIVEMATCH) "" m*test8\r\n') == (
        b'* LIST (\\NonExistent \\HasChildren) "/" "m/test8" ("CHILDINFO" ("SUBSCRIBED"))\r\n'
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "m/test8/test8"\r\n'
        b"b OK List completed.\r\n"
    )
    # The subscribed child matches another pattern: no CHILDINFO for its parent.
    assert await t.talk(b'c LIST (SUBSCRIBED RECURSIVEMATCH) "" (m/test2 m/test2/test1)\r\n') == (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "m/test2/test1"\r\nc OK List completed.\r\n'
    )


async def test_lsub_percent_gives_unsubscribed_parents_as_noselect() -> None:
    t = await _tree()
    assert await t.talk(b'a LSUB "" m/%\r\n') == (
        b'* LSUB (\\HasNoChildren) "/" "m/test1"\r\n'
        b'* LSUB (\\Noselect \\HasChildren) "/" "m/test2"\r\n'
        b'* LSUB (\\HasNoChildren) "/" "m/test6"\r\n'
        b'* LSUB (\\Noselect \\HasChildren) "/" "m/test8"\r\n'
        b"a OK Lsub completed.\r\n"
    )
    assert await t.talk(b'b LSUB "" *test1\r\n') == (
        b'* LSUB (\\HasNoChildren) "/" "m/test1"\r\n'
        b'* LSUB (\\HasNoChildren) "/" "m/test2/test1"\r\n'
        b"b OK Lsub completed.\r\n"
    )
    # Without a trailing %, an unsubscribed parent is not listed (Dovecot neither).
    assert await t.talk(b'c LSUB "" m/test2\r\n') == b"c OK Lsub completed.\r\n"
    assert b"s OK" in await t.talk(b"s UNSUBSCRIBE m/test2/test1\r\n")
    assert await t.talk(b'd LSUB "" m/test2%\r\n') == b"d OK Lsub completed.\r\n"
