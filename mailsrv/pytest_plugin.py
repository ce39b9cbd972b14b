"""The pytest plugin (entry point ``pytest11``: installing mailsrv is enough).

Fixtures:

- ``mail_server``: a fresh ``ThreadedMailServer`` per test (sync API; sync and async tests);
- ``mail_server_async``: a fresh ``AsyncMailServer`` on the async test's own loop (async API);
- ``mail_server_session``: one threaded server for the whole session, ``reset()`` before each
  test that uses it;
- ``mail_server_config``: override it to configure ``mail_server`` and ``mail_server_async``
  for a project or a directory (return a dict of options, or a ``mailsrv.Config``);
- ``mail_server_session_config``: the same for ``mail_server_session`` (session scope).

``@pytest.mark.mail_server(users={"alice": "pw"}, dev=False, pop3_delete="flag", ...)`` sets
options for one test (or class or module), over ``mail_server_config``. When a test fails, the
transcript of its mail server's sessions is added to the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import pytest_asyncio

from mailsrv.config import Config
from mailsrv.testing import AsyncMailServer, ThreadedMailServer, config_overrides

if TYPE_CHECKING:
    from _pytest.nodes import Node  # request.node's type; pytest exports no public name
    from pluggy import Result

R = TypeVar("R")

_SERVERS = pytest.StashKey[list[ThreadedMailServer | AsyncMailServer]]()
#: Options the session server can take per test (others need a server of its own).
_SESSION_MARKER_OPTIONS = frozenset({"users"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "mail_server_transcript_lines",
        "Transcript lines of the mail server added to a failing test's report (0: none)",
        default="200",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mail_server(**options): options for the mail_server fixtures in this test, e.g. "
        "users={'alice': 'pw'}, dev=False, tls=True, pop3_delete='flag', limits={...}",
    )


def _as_options(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Config):
        return config_overrides(value)
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"{where} must return a dict of options or a mailsrv.Config, not {value!r}")


def _marker_options(node: Node) -> dict[str, Any]:
    """The ``mail_server`` markers' options, the closest (the test's own) winning."""
    options: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers("mail_server"))):
        if mark.args:
            raise TypeError("@pytest.mark.mail_server takes keyword options only")
        options.update(mark.kwargs)
    return options


def _or_fail(make: Callable[[], R]) -> R:
    """``make()``; a configuration mistake fails the test with just its message."""
    try:
        return make()
    except TypeError as exc:
        problem = str(exc)
    pytest.fail(f"mail server configuration: {problem}", pytrace=False)


def _options(request: pytest.FixtureRequest, config_value: Any) -> dict[str, Any]:
    options = _or_fail(lambda: _as_options(config_value, "mail_server_config"))
    options.update(_or_fail(lambda: _marker_options(request.node)))
    return options


def _configured(factory: Callable[..., R], base: Path, options: dict[str, Any]) -> R:
    return _or_fail(lambda: factory(base, **options))


def _track(request: pytest.FixtureRequest, server: ThreadedMailServer | AsyncMailServer) -> None:
    request.node.stash.setdefault(_SERVERS, []).append(server)


@pytest.fixture
def mail_server_config() -> dict[str, Any] | Config:
    """Options for ``mail_server`` and ``mail_server_async``; override it in a conftest."""
    return {}


@pytest.fixture(scope="session")
def mail_server_session_config() -> dict[str, Any] | Config:
    """Options for ``mail_server_session``; override it (session scope) in a conftest."""
    return {}


@pytest.fixture
def mail_server(
    request: pytest.FixtureRequest,
    mail_server_config: dict[str, Any] | Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ThreadedMailServer]:
    """A fresh mail server for this test, on its own thread, with a synchronous API."""
    options = _options(request, mail_server_config)
    base = tmp_path_factory.mktemp("mailsrv", numbered=True)
    with _configured(ThreadedMailServer, base, options) as server:
        _track(request, server)
        yield server


@pytest_asyncio.fixture
async def mail_server_async(
    request: pytest.FixtureRequest,
    mail_server_config: dict[str, Any] | Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[AsyncMailServer]:
    """A fresh mail server on this async test's loop, with an async API."""
    options = _options(request, mail_server_config)
    base = tmp_path_factory.mktemp("mailsrv", numbered=True)
    async with _configured(AsyncMailServer, base, options) as server:
        _track(request, server)
        yield server


@pytest.fixture(scope="session")
def _mail_server_shared(
    mail_server_session_config: dict[str, Any] | Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ThreadedMailServer]:
    options = _or_fail(
        lambda: _as_options(mail_server_session_config, "mail_server_session_config")
    )
    base = tmp_path_factory.mktemp("mailsrv-session", numbered=True)
    with _configured(ThreadedMailServer, base, options) as server:
        yield server


@pytest.fixture
def mail_server_session(
    request: pytest.FixtureRequest, _mail_server_shared: ThreadedMailServer
) -> ThreadedMailServer:
    """The session's shared mail server, reset for this test (no mail, no added users)."""
    marker = _marker_options(request.node)
    other = sorted(set(marker) - _SESSION_MARKER_OPTIONS)
    if other:
        pytest.fail(
            f"mail_server_session is shared by the whole session, so @pytest.mark.mail_server "
            f"can only add users to it, not set {', '.join(other)}: use the mail_server fixture "
            f"(a server of its own) or mail_server_session_config",
            pytrace=False,
        )
    server = _mail_server_shared
    server.reset()
    for name, password in (marker.get("users") or {}).items():
        server.add_user(name, password)
    _track(request, server)
    return server


@pytest.hookimpl(hookwrapper=True)  # the old-style wrapper: works with every pluggy pytest uses
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    lines = int(item.config.getini("mail_server_transcript_lines") or 0)
    for server in item.stash.get(_SERVERS, []):
        try:
            text = server.transcript_text(lines)
        except RuntimeError:  # the server is not running any more
            continue
        if text:
            report.sections.append(("mail server transcript", text))
