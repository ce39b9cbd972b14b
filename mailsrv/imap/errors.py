"""The one exception a command handler raises to end its command with a tagged NO or BAD."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class CommandFailed(Exception):
    """Ends a command with ``tag STATUS [CODE] text`` from anywhere inside it."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.code = status, text, code


def expect(value: object, kind: type[T]) -> T:
    """``value`` as a ``kind`` (a handler registered for the wrong command is a server bug)."""
    if not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
