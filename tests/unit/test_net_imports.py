"""Import rules of the shared connection layer (mailsrv.net): its sans-I/O parts import no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mailsrv

ROOT = Path(mailsrv.__file__).parent


def imported(module: str) -> set[str]:
    """Every module ``module`` imports, at any level (TYPE_CHECKING and functions too)."""
    path = ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ["mailsrv.net.sasl", "mailsrv.net.admission"])
def test_sans_io_modules_import_no_io(module: str) -> None:
    for name in imported(module):
        top = name.split(".")[0]
        assert top not in ("asyncio", "socket", "ssl"), (module, name)
        assert not name.startswith("mailsrv.store"), (module, name)
