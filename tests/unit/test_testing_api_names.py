"""The test server's three faces (AsyncMailServer, ThreadedMailServer, its .aio) share one API.

Each name in ``TEST_API`` must exist on all three with the same parameters, a coroutine on the
async faces and a plain method on the threaded one, so that the faces cannot drift apart.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from mailsrv.testing import AsyncMailServer, ThreadedMailServer
from mailsrv.testing.api_names import TEST_API
from mailsrv.testing.threaded import _AwaitableAPI

FACES: dict[str, type] = {
    "AsyncMailServer": AsyncMailServer,
    "ThreadedMailServer": ThreadedMailServer,
    "ThreadedMailServer.aio": _AwaitableAPI,
}
ASYNC_FACES = {"AsyncMailServer", "ThreadedMailServer.aio"}


def _method(cls: type, name: str) -> Callable[..., Any]:
    method = inspect.getattr_static(cls, name, None)
    assert callable(method), f"{cls.__name__} lacks the test API method {name!r}"
    return method


def _params(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_the_list_has_no_duplicates() -> None:
    assert len(set(TEST_API)) == len(TEST_API) and TEST_API


@pytest.mark.parametrize("name", TEST_API)
def test_every_face_has_the_method_with_the_same_parameters(name: str) -> None:
    reference = _params(_method(AsyncMailServer, name))
    for face, cls in FACES.items():
        method = _method(cls, name)
        assert _params(method) == reference, f"{face}.{name} differs from AsyncMailServer's"
        assert inspect.iscoroutinefunction(method) == (face in ASYNC_FACES), (
            f"{face}.{name} should {'' if face in ASYNC_FACES else 'not '}be a coroutine"
        )


@pytest.mark.parametrize("name", TEST_API)
def test_the_aio_face_documents_what_the_async_one_does(name: str) -> None:
    doc = inspect.getdoc(_method(AsyncMailServer, name))
    aio_doc = inspect.getdoc(_method(_AwaitableAPI, name))
    assert doc, f"AsyncMailServer.{name} has no docstring"
    assert aio_doc in (None, doc), f"ThreadedMailServer.aio.{name}'s docstring differs"


def test_the_async_faces_have_no_public_api_outside_the_list() -> None:
    # .aio holds nothing but the test API; a method added there must be added to the list too.
    public = {n for n, v in vars(_AwaitableAPI).items() if not n.startswith("_") and callable(v)}
    assert public == set(TEST_API)
