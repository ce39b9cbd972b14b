"""``mailsrv user``, ``certs``, ``deliver`` and ``demo``: the commands around the server."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from mailsrv.auth import UsersFile
from mailsrv.cli.common import EXIT_FAILURE, CliError, build_config
from mailsrv.config import Config
from mailsrv.quota import QuotaPolicy
from mailsrv.scan.scanner import Scanner
from mailsrv.store.base import INBOX, OverQuota, StoreError
from mailsrv.store.names import check_folder_name, check_user_name


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Password (again): ")
        except (EOFError, KeyboardInterrupt) as exc:
            raise CliError("no password given") from exc
        if password != again:
            raise CliError("the passwords do not match")
    if not password:
        raise CliError("empty password refused")
    return password


def cmd_user(args: argparse.Namespace) -> int:
    config = build_config(args)
    assert config.users_file is not None  # build_config always sets one  # noqa: S101
    users = UsersFile(config.users_file)
    if args.user_command == "list":
        for name in users.names():
            print(name)
        return 0
    name = args.name
    try:
        check_user_name(name)
    except StoreError as exc:
        raise CliError(f"invalid user name {name!r}: {exc}") from exc
    if args.user_command == "add":
        existed = users.get(name) is not None
        users.set(name, _read_password(args.password_stdin), args.scheme)
        print(f"{'updated' if existed else 'added'} {name} in {config.users_file} ({args.scheme})")
        return 0
    if not users.delete(name):
        raise CliError(f"no user {name!r} in {config.users_file}", EXIT_FAILURE)
    print(f"deleted {name} from {config.users_file} (their mail stays in {config.maildir})")
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    from mailsrv.tls import ensure_certificates

    config = build_config(args)
    paths = ensure_certificates(config.certs_dir, config.hostnames, force=args.force)
    print(f"CA certificate (trust this one): {paths.ca_file.resolve()}")
    print(f"CA key:                          {paths.ca_key.resolve()}")
    print(f"server certificate:              {paths.cert_file.resolve()}")
    print(f"server key:                      {paths.key_file.resolve()}")
    return 0


def _read_message(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror}", EXIT_FAILURE) from exc


async def _deliver(config: Config, user: str, folder: str, data: bytes) -> int:
    """Scan (with ``[scan]`` configured, as SMTP does) and store; the new message's UID."""
    from mailsrv.store.maildir import MaildirStore

    scanned = await Scanner(config.scan).scan(data, "cli")
    if scanned.refusal is not None:
        raise CliError(f"message refused: virus found ({scanned.refusal})", EXIT_FAILURE)
    store = MaildirStore(config.maildir, create_users=True)
    try:
        await store.ensure_user(user)
        if folder != INBOX and not any(f.name == folder for f in await store.list_folders(user)):
            await store.create_folder(user, folder)
        # The user's quota, as the server enforces it (the users file's rules, [limits]).
        quota = QuotaPolicy(config, store, UsersFile(config.users_file))
        with await quota.reserve([user], len(scanned.data), 1, folder):
            placed = await scanned.deliver(store, user, folder, actor="cli")
    finally:
        await store.close()
    if scanned.result is not None:
        print(f"scanned: {scanned.result.summary()}; into {placed.folder}", file=sys.stderr)
    return placed.uid


def cmd_deliver(args: argparse.Namespace) -> int:
    config = build_config(args)
    try:
        user = check_user_name(args.to)
        folder = check_folder_name(args.folder)
    except StoreError as exc:
        raise CliError(f"invalid recipient or folder: {exc}") from exc
    data = _read_message(args.file)
    if not data.strip():
        raise CliError("empty message refused")
    if len(data) > config.limits.message_size:
        raise CliError(f"message larger than the limit of {config.limits.message_size} bytes")
    try:
        uid = asyncio.run(_deliver(config, user, folder, data))
    except ModuleNotFoundError as exc:
        if exc.name != "mailsrv.store.maildir":
            raise
        raise CliError("the Maildir store is not available in this build", EXIT_FAILURE) from exc
    except OverQuota as exc:
        raise CliError(f"delivery refused: {user} is {exc}", EXIT_FAILURE) from exc
    except StoreError as exc:
        raise CliError(f"delivery failed: {exc}", EXIT_FAILURE) from exc
    print(uid)
    return 0


def demo_argv(raw: list[str]) -> list[str]:
    """The demo's own flags pass through; ``--maildir DIR`` means its ``--keep DIR``."""
    out: list[str] = []
    items = iter(raw)
    for item in items:
        if item == "--maildir":
            out += ["--keep", next(items, "")]
        elif item.startswith("--maildir="):
            out.append("--keep=" + item.split("=", 1)[1])
        else:
            out.append(item)
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from mailsrv.demo import main as demo_main
    except ImportError as exc:
        if exc.name not in ("mailsrv.demo", None):
            raise
        raise CliError("the demo is not available in this build (mailsrv.demo is missing)") from exc
    return int(demo_main(demo_argv(list(args.demo_args))) or 0)
