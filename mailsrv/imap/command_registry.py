"""Which handler runs which command: a registry keyed by the parsed command's class.

Each handler module (``any_state.py``, ``not_authenticated.py``, ``authenticated.py``,
``selected.py``) fills one with ``@HANDLERS.on(Fetch)`` (or ``HANDLERS.add(Close, close)`` for
a handler that serves several classes); the type checker holds each handler to
the class it is registered for, so no handler needs a cast. ``dispatch.py`` joins them and checks
that every command class has exactly one handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from mailsrv.imap.commands import Command

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession

C = TypeVar("C", bound=Command)
Handler = Callable[["ImapSession", C], Awaitable[None]]


class CommandRegistry:
    """Command class -> handler."""

    def __init__(self) -> None:
        self._by_class: dict[type[object], Callable[[ImapSession, Any], Awaitable[None]]] = {}

    def on(self, kind: type[C]) -> Callable[[Handler[C]], Handler[C]]:
        """Register the decorated handler for ``kind`` (``add`` registers it for more)."""

        def register(handler: Handler[C]) -> Handler[C]:
            self.add(kind, handler)
            return handler

        return register

    def add(self, kind: type[C], handler: Handler[C]) -> None:
        if kind in self._by_class:
            raise ValueError(f"{kind.__name__} already has a handler")
        self._by_class[kind] = handler

    def merge(self, *others: CommandRegistry) -> CommandRegistry:
        """One registry with the handlers of this one and ``others``."""
        joined = CommandRegistry()
        for registry in (self, *others):
            for kind, handler in registry._by_class.items():
                if kind in joined._by_class:
                    raise ValueError(f"{kind.__name__} has two handlers")
                joined._by_class[kind] = handler
        return joined

    def handler(self, cmd: C) -> Handler[C]:
        return self._by_class[type(cmd)]

    def __iter__(self) -> Iterator[type[object]]:
        return iter(self._by_class)
