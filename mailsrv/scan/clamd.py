"""ClamAV's clamd protocol: ``INSTREAM`` (and ``PING``), with the ``z`` prefix (NUL-ended).

The client sends ``zINSTREAM\\0``, then the message in chunks, each after its length as a
4-byte big-endian number, and a zero length to end; clamd answers ``stream: OK\\0``,
``stream: NAME FOUND\\0`` or ``... ERROR\\0`` and closes. clamd unpacks MIME itself, so a virus
in a base64 attachment is found. The framing and the reply parsing are sans-I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from mailsrv.scan.endpoints import Endpoint, EngineError, exchange
from mailsrv.scan.verdict import VirusCheck, safe_name, safe_text

#: Bytes per INSTREAM chunk (clamd reads each into its buffer; 64 KiB keeps syscalls few).
CHUNK = 64 * 1024
#: clamd's answer is one short line.
MAX_REPLY = 4096


def instream_chunks(data: bytes) -> Iterator[bytes | memoryview]:
    """The whole ``INSTREAM`` request for ``data``, as pieces to write (no copy of the data)."""
    yield b"zINSTREAM\0"
    view = memoryview(data)
    for at in range(0, len(data), CHUNK):
        piece = view[at : at + CHUNK]
        yield struct.pack(">I", len(piece))
        yield piece
    yield struct.pack(">I", 0)


def parse_instream_reply(reply: bytes) -> VirusCheck:
    """clamd's answer to ``INSTREAM`` as a verdict; ``EngineError`` for ERROR or garbage."""
    text = reply.rstrip(b"\0\n").decode("latin-1")
    if not text.startswith("stream:"):
        raise EngineError(f"not a clamd reply: {safe_text(text, 60)!r}")
    result = text[len("stream:") :].strip()
    if result == "OK":
        return VirusCheck("clean")
    if result.endswith(" FOUND"):
        name = safe_name(result[: -len(" FOUND")].strip())
        if name is None:
            raise EngineError("clamd found something with a name that is not a signature name")
        return VirusCheck("infected", name)
    raise EngineError(f"clamd answered {safe_text(result, 80)!r}")


def parse_pong(reply: bytes) -> None:
    if reply.rstrip(b"\0\n") != b"PONG":
        raise EngineError("clamd did not answer PING with PONG")


async def check(endpoint: Endpoint, data: bytes) -> VirusCheck:
    """Have clamd scan ``data``."""
    return parse_instream_reply(await exchange(endpoint, instream_chunks(data), MAX_REPLY))


async def ping(endpoint: Endpoint) -> None:
    parse_pong(await exchange(endpoint, (b"zPING\0",), MAX_REPLY))
