"""The package's shape stays as docs/architecture.md describes it: no import cycle (counting
every import, TYPE_CHECKING and function-level ones too), no module over 500 lines, a
protocol-free message library, a store that knows no protocol, sans-I/O cores, no re-export
shims. (The message library's own rule is in test_message_architecture.py.)"""

from __future__ import annotations

import ast

import pytest

from tests.architecture import MAX_LINES, cycles, graph, imports_outside, modules, oversized

PROTOCOLS = ("mailsrv.imap", "mailsrv.pop3", "mailsrv.smtp", "mailsrv.web")
IO = ("asyncio", "socket", "ssl", "selectors", "uvloop", "aiosmtpd", "aiohttp")


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_no_module_over_the_limit() -> None:
    assert list(oversized()) == [], f"modules over {MAX_LINES} lines"


def test_the_web_console_reads_mail_through_the_message_library() -> None:
    used = graph()["mailsrv.web.messages"]
    assert any(m == "mailsrv.message" or m.startswith("mailsrv.message.") for m in used)


def test_the_store_knows_no_protocol() -> None:
    assert imports_outside("mailsrv.store", PROTOCOLS) == []


@pytest.mark.parametrize(
    "core",
    ["mailsrv.imap.core", "mailsrv.imap.framing", "mailsrv.pop3.protocol", "mailsrv.net.sasl"],
)
def test_protocol_cores_do_no_io(core: str) -> None:
    if core not in modules():
        pytest.skip(f"{core} is not there")
    assert imports_outside(core, (*IO, "mailsrv.store", "mailsrv.server")) == []


def test_the_report_card_only_reads_transcripts() -> None:
    """Its observers are fed transcript lines: no I/O, no store, no protocol package."""
    assert imports_outside("mailsrv.report", (*IO, *PROTOCOLS, "mailsrv.store")) == []


def test_no_module_only_re_exports() -> None:
    """A module whose body is nothing but imports (and ``__all__``) is a shim: import the real
    module instead. A package's ``__init__`` may gather its public names (``mailsrv``,
    ``mailsrv.testing``): that is the package's face for its users, not a leftover."""
    shims = []
    for name, path in modules().items():
        if path.name == "__init__.py":
            continue
        body = ast.parse(path.read_text(encoding="utf-8")).body
        stmts = [
            n
            for n in body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
            and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
        ]
        imports = [n for n in stmts if isinstance(n, ast.Import | ast.ImportFrom)]
        rest = [
            n
            for n in stmts
            if n not in imports
            and not (
                isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)
            )
        ]
        if imports and not rest:
            shims.append(name)
    assert shims == []
