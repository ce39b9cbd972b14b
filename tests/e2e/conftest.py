"""End-to-end async tests run twice: on the default asyncio loop and on uvloop (what
``mailsrv serve`` uses), since transports differ in how they report closed peers and TLS."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    if "test_web_browser" in item.nodeid:
        return factories  # Playwright drives its browser over the test's loop; one loop is enough
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported OS
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
