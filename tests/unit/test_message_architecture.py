"""``mailsrv.message`` is protocol-free: the standard library and itself, nothing else."""

from __future__ import annotations

import ast
import sys

from tests.architecture import graph, imports_outside, modules

FORBIDDEN = ("mailsrv.imap", "mailsrv.pop3", "mailsrv.smtp", "mailsrv.store", "mailsrv.web")


def test_message_imports_no_protocol_store_or_web_package_nor_asyncio() -> None:
    assert imports_outside("mailsrv.message", (*FORBIDDEN, "asyncio")) == []


def test_message_imports_only_itself_and_the_standard_library() -> None:
    inside = {name: deps for name, deps in graph().items() if name.startswith("mailsrv.message")}
    assert len(inside) > 1
    for name, deps in inside.items():
        assert all(d.startswith("mailsrv.message") for d in deps), (name, deps)
    allowed = sys.stdlib_module_names | {"mailsrv"}
    for name, path in modules().items():
        if not name.startswith("mailsrv.message"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            assert all(top in allowed for top in tops), (name, tops)
