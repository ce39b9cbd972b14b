"""SAVEDATE (RFC 8514) in sessions: FETCH SAVEDATE, SEARCH SAVEDBEFORE/SAVEDON/SAVEDSINCE and
SAVEDATESUPPORTED, the save date apart from the internal date, and the persona gate."""

from __future__ import annotations

import dataclasses
import time

from mailsrv.imap.responses import internal_date
from mailsrv.store.memory import MemoryStore
from tests.unit.imap_harness import MESSAGE, Talker, make_context

OLD = 946684800.0  # 1-Jan-2000: the internal date, long before the save date


async def _session(persona: str | None = None) -> tuple[Talker, MemoryStore]:
    store = MemoryStore()
    await store.ensure_user("ann")
    await store.deliver("ann", MESSAGE, internal_date=OLD)
    ctx = make_context(store)
    if persona is not None:
        ctx.config = dataclasses.replace(ctx.config, persona=persona)
    t = Talker(ctx)
    await t.login()
    await t.select()
    return t, store


async def test_fetch_savedate_is_the_save_time_not_the_internal_date() -> None:
    t, store = await _session()
    saved = await (await store.open("ann")).save_date(1)
    assert abs(saved - time.time()) < 60
    reply = await t.talk(b"f FETCH 1 (SAVEDATE INTERNALDATE)\r\n")
    assert b"SAVEDATE " + internal_date(saved) + b" INTERNALDATE " + internal_date(OLD) in reply


async def test_search_saved_keys() -> None:
    t, store = await _session()
    saved = await (await store.open("ann")).save_date(1)
    today = time.strftime("%d-%b-%Y", time.localtime(saved)).lstrip("0").encode()
    cases = {
        b"SAVEDON " + today: b"* SEARCH 1\r\n",
        b"SAVEDSINCE " + today: b"* SEARCH 1\r\n",
        b"SAVEDBEFORE " + today: b"* SEARCH\r\n",
        b"SAVEDSINCE 1-Feb-2000": b"* SEARCH 1\r\n",
        b"SAVEDBEFORE 1-Feb-2000": b"* SEARCH\r\n",
        b"BEFORE 1-Feb-2000": b"* SEARCH 1\r\n",  # the internal date is another thing
        b"SAVEDATESUPPORTED": b"* SEARCH 1\r\n",
        b"NOT SAVEDATESUPPORTED": b"* SEARCH\r\n",
    }
    for criteria, answer in cases.items():
        assert (await t.talk(b"s SEARCH " + criteria + b"\r\n")).startswith(answer), criteria
    assert (await t.talk(b"s SEARCH SAVEDON 32-Jan-2000\r\n")).startswith(b"s BAD ")


async def test_persona_without_savedate() -> None:
    t, _ = await _session("gmail")
    assert (await t.talk(b"f FETCH 1 (SAVEDATE)\r\n")).startswith(b"f BAD")
    assert (await t.talk(b"s SEARCH SAVEDATESUPPORTED\r\n")).startswith(b"s BAD")
