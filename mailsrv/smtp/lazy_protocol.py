"""``lazy_protocol_factory``: an SMTP or LMTP listener's protocol factory that makes its handler
at the first connection, so that aiosmtpd is imported then and not while the server starts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

Handler = TypeVar("Handler")


def lazy_protocol_factory(
    make_handler: Callable[[], Handler], make_protocol: Callable[[Handler], asyncio.Protocol]
) -> Callable[[], asyncio.Protocol]:
    """A factory for ``create_server``: ``make_handler()`` once, at the first connection (it
    imports what it needs then), and ``make_protocol(handler)`` for every connection."""
    handlers: list[Handler] = []

    def factory() -> asyncio.Protocol:
        if not handlers:
            handlers.append(make_handler())
        return make_protocol(handlers[0])

    return factory
