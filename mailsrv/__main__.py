"""The ``mailsrv`` command line: serve, check-config, user, certs, deliver, demo."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from mailsrv.cli.check_config import add_check_config_arguments, cmd_check_config
from mailsrv.cli.common import CliError, OneLineParser, add_common_arguments, error
from mailsrv.cli.serve import add_serve_arguments, cmd_serve
from mailsrv.passwords import DEFAULT_SCHEME, WRITABLE
from mailsrv.version import __version__

Command = Callable[[argparse.Namespace], int]


def _admin(name: str) -> Command:
    """``mailsrv.cli.admin.<name>``, imported only when that subcommand runs (fast ``serve``)."""

    def run(args: argparse.Namespace) -> int:
        func: Command = getattr(importlib.import_module("mailsrv.cli.admin"), name)
        return func(args)

    return run


cmd_user, cmd_certs, cmd_deliver, cmd_demo = (
    _admin(n) for n in ("cmd_user", "cmd_certs", "cmd_deliver", "cmd_demo")
)


def cmd_personas(args: argparse.Namespace) -> int:
    from mailsrv.cli.personas import cmd_personas as run

    return run(args)


EPILOG = """\
examples:
  mailsrv serve --dev                      ports +3000, any password, Maildir in var/mail
  mailsrv user add alice --password-stdin  add or update a user (ARGON2ID hash)
  mailsrv deliver --to alice mail.eml      put one message in alice's INBOX, print its UID
  mailsrv certs --force                    make a new CA and server certificate
  mailsrv check-config var/mailsrv.toml    the effective configuration, or its first mistake
  mailsrv serve --dev --persona gmail      IMAP as Gmail shows it (mailsrv personas: all)

The users file defaults to 'users' beside the Maildir root (var/mail -> var/users) unless
--users or users_file in the config says otherwise.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="mailsrv",
        description="POP3 + IMAP + SMTP on one asyncio loop and one Maildir.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailsrv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server until SIGTERM or Ctrl-C")
    add_serve_arguments(serve)
    add_common_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser(
        "check-config", help="print the effective configuration of FILE, or its first mistake"
    )
    add_check_config_arguments(check)
    check.set_defaults(func=cmd_check_config)

    user = sub.add_parser("user", help="add, delete or list users in the users file")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", help="add a user or change their password")
    add.add_argument("name")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line"
    )
    add.add_argument(
        "--scheme",
        default=DEFAULT_SCHEME,
        type=str.upper,
        choices=WRITABLE,
        help=f"Dovecot password scheme to write (default {DEFAULT_SCHEME})",
    )
    delete = user_sub.add_parser("del", help="remove a user (their mail stays)")
    delete.add_argument("name")
    listing = user_sub.add_parser("list", help="print every user name")
    for p in (add, delete, listing):
        add_common_arguments(p)
        p.set_defaults(func=cmd_user)

    certs = sub.add_parser("certs", help="make the local CA and server certificate")
    certs.add_argument("--force", action="store_true", help="make new ones even if valid")
    add_common_arguments(certs)
    certs.set_defaults(func=cmd_certs)

    deliver = sub.add_parser("deliver", help="deliver one message into the Maildir store")
    deliver.add_argument("--to", required=True, metavar="USER", help="local user")
    deliver.add_argument("--folder", default="INBOX", metavar="F", help="folder (INBOX)")
    deliver.add_argument("file", nargs="?", default="-", metavar="FILE|-", help="default stdin")
    add_common_arguments(deliver)
    deliver.set_defaults(func=cmd_deliver)

    personas = sub.add_parser(
        "personas", help="the servers IMAP can present itself as, with the source of each"
    )
    personas.add_argument("name", nargs="?", metavar="NAME", help="one persona in full")
    personas.set_defaults(func=cmd_personas)

    demo = sub.add_parser(
        "demo",
        help="the POP3-versus-IMAP teaching demo (its own options follow)",
        add_help=False,
    )
    demo.add_argument("demo_args", nargs=argparse.REMAINDER)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["demo"]:
        # The demo parses its own options (argparse's REMAINDER stumbles on leading flags).
        args = parser.parse_args(["demo"])
        args.demo_args = argv[1:]
    else:
        args = parser.parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except CliError as exc:
        error(str(exc))
        return exc.status


if __name__ == "__main__":
    sys.exit(main())
