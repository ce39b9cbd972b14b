"""Where ``--trace`` and ``--trace-file`` send transcript lines: the terminal and a JSON-lines file.

Terminal lines read ``00:12:03.517 imap-3 alice C: a1 LOGIN alice ***``; on a TTY the client's
lines are green, the server's blue and events (connect, TLS, close) dim. The file gets one JSON
object per line (``TraceLine.as_dict``), flushed line by line so ``tail -f`` follows it.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from mailsrv.config import Config
from mailsrv.trace import TraceLine, Tracer

_COLOURS = {"C": "\x1b[32m", "S": "\x1b[34m", "*": "\x1b[2m"}
_RESET = "\x1b[0m"


def format_line(line: TraceLine, colour: bool = False) -> str:
    """One transcript line for a terminal (no newline)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(line.time))
    millis = int((line.time % 1) * 1000)
    who = f"{line.session} {line.user}" if line.user else line.session
    text = f"{line.direction}: {line.text}" if line.direction in ("C", "S") else f"* {line.text}"
    if colour:
        text = f"{_COLOURS.get(line.direction, '')}{text}{_RESET}"
    return f"{stamp}.{millis:03d} {who} {text}"


def terminal_sink(stream: TextIO | None = None) -> Callable[[TraceLine], None]:
    """A sink printing to ``stream`` (stderr by default), coloured when it is a TTY."""

    def sink(line: TraceLine) -> None:
        out = stream if stream is not None else sys.stderr
        colour = out.isatty()
        try:
            out.write(format_line(line, colour) + "\n")
            out.flush()
        except (OSError, ValueError):  # closed or broken stderr must not break a session
            pass

    return sink


def json_file_sink(path: Path) -> tuple[Callable[[TraceLine], None], Callable[[], None]]:
    """A sink appending JSON lines to ``path`` (line-buffered), and a function closing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("a", buffering=1, encoding="utf-8")

    def sink(line: TraceLine) -> None:
        if not f.closed:
            f.write(json.dumps(line.as_dict(), ensure_ascii=False) + "\n")

    return sink, f.close


def install_trace_sinks(tracer: Tracer, config: Config) -> Callable[[], None]:
    """Add the sinks ``config`` asks for to ``tracer``; returns a function removing them."""
    removers: list[Callable[[], None]] = []
    if config.trace:
        removers.append(tracer.add_sink(terminal_sink()))
    if config.trace_file is not None:
        sink, close = json_file_sink(config.trace_file)
        remove = tracer.add_sink(sink)
        atexit.register(close)

        def remove_and_close() -> None:
            remove()
            close()
            atexit.unregister(close)

        removers.append(remove_and_close)

    def uninstall() -> None:
        for remove in removers:
            remove()

    return uninstall
