"""``mailsrv check-config FILE``: the effective configuration, or the first mistake in it.

The output is TOML: every key with the value the server would use (defaults, the file, the dev
defaults), secrets replaced by ``"(hidden)"``, keys that are not set as comments, and the port
each service would listen on at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from mailsrv.cli.common import build_config
from mailsrv.config import STANDARD_PORTS, Config
from mailsrv.config_fields import show

HIDDEN = '"(hidden)"'
#: Parts of a key's name that mark it as a secret (``http_token``, a future ``*_password``).
SECRET_WORDS = ("token", "password", "secret")


def is_secret(key: str) -> bool:
    return any(word in key for word in SECRET_WORDS)


def _lines(obj: Any) -> tuple[list[str], list[tuple[str, Any]]]:
    """``key = value`` lines of a dataclass's plain fields, and its nested ones (tables)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            tables.append((f.name, value))
        elif value is None:
            lines.append(f"# {f.name} is not set")
        elif is_secret(f.name):
            lines.append(f"{f.name} = {HIDDEN}")
        else:
            lines.append(f"{f.name} = {show(value)}")
    return lines, tables


def render(config: Config) -> str:
    """The effective configuration as TOML, secrets hidden."""
    lines, tables = _lines(config)
    for name, table in tables:
        inner, _ = _lines(table)
        lines += ["", f"[{name}]", *inner]
    lines += ["", "# ports the server would listen on (off: not listening)"]
    for service in (*STANDARD_PORTS, "http"):
        port = config.port_for(service)
        lines.append(f"#   {service:<11} {'off' if port is None else port}")
    return "\n".join(lines) + "\n"


def add_check_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the TOML config file to check")


def cmd_check_config(args: argparse.Namespace) -> int:
    checked = argparse.Namespace(config=args.file, maildir=None, users=None, certs=None)
    print(render(build_config(checked)), end="")
    return 0
