"""LIST and LSUB references and patterns that are not valid names on the wire: they name
nothing (OK, no results), as Dovecot answers; SELECT of such a name stays NO."""

from __future__ import annotations

from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import Talker, make_context

ATOMS = b"!#$$&'+,-.0123456789:;<=>?@^_`|[}"


async def _ann() -> Talker:
    store = MemoryStore()
    await store.ensure_user("ann")
    await store.create_folder("ann", "Caf\u00e9")
    t = Talker(make_context(store))
    await t.login()
    return t


async def test_a_pattern_that_is_not_modified_utf7_names_nothing() -> None:
    t = await _ann()
    assert await t.talk(b'a LIST "" ' + ATOMS + b"%*\r\n") == b"a OK List completed.\r\n"
    assert await t.talk(b'b LIST "" Caf&*\r\n') == b"b OK List completed.\r\n"
    assert await t.talk(b'c LIST "" ("" &)\r\n') == b"c OK List completed.\r\n"
    assert await t.talk(b'd LSUB "" &\r\n') == b"d OK Lsub completed.\r\n"
    assert await t.talk(b"e LIST & *\r\n") == b"e OK List completed.\r\n"
    # The empty pattern still asks for the delimiter, whatever the reference.
    assert (
        await t.talk(b'f LIST & ""\r\n')
        == b'* LIST (\\Noselect) "/" ""\r\nf OK List completed.\r\n'
    )
    assert await t.talk(b'g LIST "" Caf&AOk-\r\n') == (
        b'* LIST (\\HasNoChildren) "/" "Caf&AOk-"\r\ng OK List completed.\r\n'
    )


async def test_select_of_such_a_name_is_still_no() -> None:
    t = await _ann()
    assert await t.talk(b"a SELECT " + ATOMS + b"\r\n") == (
        b"a NO [CANNOT] Mailbox name is not valid modified UTF-7\r\n"
    )
