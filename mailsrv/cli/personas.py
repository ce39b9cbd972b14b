"""``mailsrv personas``: the servers mailsrv can present itself as, and where each difference
comes from (``mailsrv.personas``)."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from mailsrv.cli.common import CliError
from mailsrv.config import Limits
from mailsrv.imap.responses import capabilities
from mailsrv.net import sasl
from mailsrv.personas.catalog import PERSONAS
from mailsrv.personas.persona import CONNECTION_CAPABILITIES, Persona


def _ours(persona: Persona, *, authenticated: bool) -> list[str]:
    """mailsrv's list for a TLS connection that may log in with any mechanism mailsrv has
    (some need SCRAM secrets or tokens in the users file, or dev mode), as ``persona`` shows
    it."""
    limit = persona.configure_limit(Limits().message_size)
    text = capabilities(
        authenticated=authenticated,
        tls=True,
        starttls=False,
        plaintext=True,
        append_limit=limit,
        compress=True,
        mechanisms=tuple(sasl.MECHANISMS),
    )
    return persona.capability_list(text.split(), authenticated=authenticated)


def describe(persona: Persona, out: TextIO, *, full: bool) -> None:
    print(f"{persona.name:<10} {persona.title}", file=out)
    if not full:
        for source in persona.sources:
            print(f"  {source.what}: {source.where}", file=out)
        return
    for authenticated, documented in (
        (False, persona.documented_before),
        (True, persona.documented_after),
    ):
        when = "after login" if authenticated else "before login"
        shown = _ours(persona, authenticated=authenticated)
        print(f"  capabilities {when}: {' '.join(shown)}", file=out)
        if documented is not None:
            advertised = {c.partition("=")[0] if c.startswith("APPENDLIMIT") else c for c in shown}
            missing = [
                c for c in documented if c not in advertised and c not in CONNECTION_CAPABILITIES
            ]
            if missing:
                print(f"    documented, not offered by mailsrv: {' '.join(missing)}", file=out)
    folders = persona.special_folders
    if folders is not None:
        listed = ", ".join(f"{name} ({attr})" for attr, name in folders.items()) or "INBOX only"
        print(f"  new users' folders: {listed}", file=out)
    if persona.message_size is not None:
        print(f"  message size limit: {persona.message_size} bytes", file=out)
    for source in persona.sources:
        print(f"  source: {source.what}: {source.where}", file=out)


def cmd_personas(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = sys.stdout if out is None else out
    if args.name is not None:
        if args.name not in PERSONAS:
            raise CliError(f"unknown persona {args.name!r}; known: {', '.join(PERSONAS)}")
        describe(PERSONAS[args.name], stream, full=True)
        return 0
    for persona in PERSONAS.values():
        describe(persona, stream, full=False)
    print(
        '\nmailsrv serve --persona NAME (or persona = "NAME"); mailsrv personas NAME '
        "shows one in full.",
        file=stream,
    )
    return 0
