"""The small types an IMAP session shares with its adapter and command modules.

``Sink`` is where responses go, ``Mode`` tells the adapter what to read next and ``After`` what
to do once the output is flushed (see ``session.py``).
"""

from __future__ import annotations

import enum
from typing import Protocol


class Sink(Protocol):
    """Where responses go: ``write`` buffers, ``drain`` sends and waits for the peer to read."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class Mode(enum.Enum):
    COMMAND = "command"
    SASL = "sasl"  # reading AUTHENTICATE responses
    IDLE = "idle"  # waiting for DONE, pushing updates


class After(enum.Enum):
    NOTHING = "nothing"
    STARTTLS = "starttls"
    CLOSE = "close"
