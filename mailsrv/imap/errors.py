"""The one exception a command handler raises to end its command with a tagged NO or BAD."""

from __future__ import annotations


class CommandFailed(Exception):
    """Ends a command with ``tag STATUS [CODE] text`` from anywhere inside it."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.code = status, text, code
