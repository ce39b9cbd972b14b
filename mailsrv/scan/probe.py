"""What ``mailsrv serve`` says about scanning: which engines answer ``PING``, and, with
``--scan``, the local defaults found for an engine ``[scan]`` does not name."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from mailsrv.scan import clamd, spamc
from mailsrv.scan.endpoints import Endpoint, EngineError, parse_endpoint
from mailsrv.scan.settings import LOCAL_SPAM_DEFAULTS, LOCAL_VIRUS_DEFAULTS, ScanSettings

#: Seconds one PING may take at start-up (a local daemon answers in milliseconds).
PING_TIMEOUT = 2.0

Ping = Callable[[Endpoint], Awaitable[None]]


async def _answers(url: str, scheme: str, ping: Ping) -> str | None:
    """None when the engine at ``url`` answers PING, else why not."""
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            await ping(parse_endpoint(url, scheme))
    except TimeoutError:
        return f"no answer within {PING_TIMEOUT:g} s"
    except EngineError as exc:
        return str(exc)
    return None


async def _one(
    label: str, url: str | None, look: Sequence[str], scheme: str, ping: Ping
) -> tuple[str | None, str]:
    """The engine's URL to use and the banner line about it."""
    if url is not None:
        why = await _answers(url, scheme, ping)
        if why is None:
            return url, f"{label:<6} {url} (answers)"
        return url, f"{label:<6} {url} (not answering: {why}; mail is delivered unscanned)"
    for candidate in look:
        if await _answers(candidate, scheme, ping) is None:
            return candidate, f"{label:<6} {candidate} (found, answers)"
    if look:
        return None, f"{label:<6} off (nothing answers at {', '.join(look)})"
    return None, f"{label:<6} off"


async def probe(settings: ScanSettings, look_locally: bool) -> tuple[ScanSettings, list[str]]:
    """The settings to run with and the banner's lines: each engine's address and whether it
    answers (both asked at once); ``look_locally`` (``--scan``) fills an unnamed engine from the
    local defaults."""
    spam_look = LOCAL_SPAM_DEFAULTS if look_locally else ()
    virus_look = LOCAL_VIRUS_DEFAULTS if look_locally else ()
    (spam, spam_line), (virus, virus_line) = await asyncio.gather(
        _one("spam", settings.spam, spam_look, "spamc", spamc.ping),
        _one("virus", settings.virus, virus_look, "clamd", clamd.ping),
    )
    return dataclasses.replace(settings, spam=spam, virus=virus), [spam_line, virus_line]
