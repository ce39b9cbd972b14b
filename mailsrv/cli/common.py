"""What every ``mailsrv`` subcommand shares: the common flags, and a ``Config`` built from them."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, NoReturn

from mailsrv.config import Config, ConfigError, load_config

#: Exit status for bad usage, bad input and bind failures (argparse uses 2 as well).
EXIT_USAGE = 2
EXIT_FAILURE = 1


class CliError(Exception):
    """A failure to report as ``mailsrv: <message>`` and exit with ``status``."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``--help`` has the rest)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


#: Flags whose name is not the config key's with dashes (``port_offset`` -> ``--port-offset``).
_FLAG_NAMES = {"users_file": "--users", "certs_dir": "--certs", "http_enabled": "--no-http"}


def flag_name(key: str) -> str:
    """The command-line flag that sets the config key ``key``."""
    return _FLAG_NAMES.get(key, "--" + key.replace("_", "-"))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument("--config", type=Path, metavar="FILE", help="TOML config file")
    group.add_argument(
        "--maildir", type=Path, metavar="DIR", help="Maildir root (default: var/mail)"
    )
    group.add_argument(
        "--users",
        type=Path,
        metavar="FILE",
        help="users file (default: users_file from the config, else 'users' next to the "
        "Maildir root: var/mail -> var/users)",
    )
    group.add_argument(
        "--certs", type=Path, metavar="DIR", help="CA and server certificate (default: certs)"
    )


def default_users_file(maildir: Path) -> Path:
    """``users`` beside the Maildir root: ``var/mail`` -> ``var/users``."""
    return maildir.parent / "users"


def with_default_users(config: Config) -> Config:
    if config.users_file is not None:
        return config
    return dataclasses.replace(config, users_file=default_users_file(config.maildir))


def build_config(
    args: argparse.Namespace, *, default_users: bool = True, **overrides: Any
) -> Config:
    """The config file (if any), then the common flags, then ``overrides`` (None = not given).

    With ``default_users`` a missing users file is set to the one beside the Maildir root.
    """
    flags = {"maildir": args.maildir, "users_file": args.users, "certs_dir": args.certs}
    flags.update(overrides)
    try:
        config = load_config(args.config, **flags)
    except ConfigError as exc:
        key = (exc.key or "").split(".")[0]
        if exc.where is None and flags.get(key) is not None:
            raise CliError(f"option {flag_name(key)}: {exc.text}") from exc
        raise CliError(str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise CliError(f"bad configuration: {exc}") from exc
    return with_default_users(config) if default_users else config


def error(message: str) -> None:
    print(f"mailsrv: {message}", file=sys.stderr)
