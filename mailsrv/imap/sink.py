"""Where an IMAP session's responses go (the adapter's buffered writer, or a list in tests)."""

from __future__ import annotations

from typing import Protocol


class Sink(Protocol):
    """``write`` buffers, ``drain`` sends and waits for the peer to read."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...
