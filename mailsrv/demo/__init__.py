"""``mailsrv demo``: POP3 versus IMAP, live on one Maildir, narrated scene by scene.

Starts an in-process server on ephemeral ports with a fresh Maildir (``--keep DIR`` keeps it),
delivers mail over SMTP, and runs a laptop and a phone on IMAP and a desktop on POP3 through the
scenes in ``scenes.py``. Without a terminal it runs straight through, so tests can run it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from mailsrv.config import Config
from mailsrv.demo.render import render_scene, render_summary
from mailsrv.demo.scenes import Scene, run_scenes
from mailsrv.scan.probe import probe
from mailsrv.scan.settings import ScanSettings, settings_problem
from mailsrv.server import MailServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mailsrv demo", description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=Path, help="use and keep this Maildir root")
    p.add_argument("--step", action="store_true", help="wait for Enter between scenes")
    p.add_argument("--json", action="store_true", help="print the facts as JSON at the end")
    p.add_argument("--web", action="store_true", help="serve the web console while it runs")
    p.add_argument("--http-port", type=int, default=8025, help="console port with --web")
    p.add_argument("--pause", type=float, default=None, help="seconds between scenes")
    p.add_argument("--certs", type=Path, default=Path("certs"), help="certificates folder")
    p.add_argument(
        "--scan", action="store_true", help="scene 7 with the local spamd and clamd, if found"
    )
    p.add_argument("--spam", metavar="URL", help="spamd for scene 7 (spamc://HOST:PORT)")
    p.add_argument("--virus", metavar="URL", help="clamd for scene 7 (clamd://HOST:PORT)")
    return p


async def run_demo(args: argparse.Namespace, console: Console) -> list[Scene]:
    with tempfile.TemporaryDirectory(prefix="mailsrv-demo-") as tmp:
        root = args.keep if args.keep else Path(tmp) / "mail"
        config = Config(
            maildir=root,
            certs_dir=args.certs,
            dev=True,
            allow_plaintext_auth=True,
            tls=False,
            http_enabled=args.web,
        ).with_ephemeral_ports()
        if args.web:
            config = dataclasses.replace(config, http_port=args.http_port)
        if args.scan or args.spam or args.virus:
            wanted = ScanSettings(spam=args.spam, virus=args.virus)
            problem = settings_problem(wanted)
            if problem is not None:
                raise SystemExit(f"mailsrv demo: --{problem[0]} {problem[1]}")
            scan, found = await probe(wanted, look_locally=args.scan)
            config = dataclasses.replace(config, scan=scan)
            console.print("Scanning: " + "; ".join(found))
        pause = args.pause if args.pause is not None else (3.0 if args.web else 0.0)
        interactive = args.step and sys.stdin.isatty()

        async def before(scene: Scene) -> None:
            if interactive:
                await asyncio.to_thread(input, f"\nPress Enter for: {scene.title} ")
            elif pause:
                await asyncio.sleep(pause)

        async with MailServer(config) as server:
            ports = server.ports
            console.print(
                f"[bold]mailsrv demo[/]: SMTP {ports.smtp}, POP3 {ports.pop3}, IMAP {ports.imap}"
                f", Maildir {root}"
            )
            if args.web and ports.http:
                console.print(f"Watch it in the console: http://127.0.0.1:{ports.http}/")

            async def after(scene: Scene) -> None:
                render_scene(console, scene)

            scenes = await run_scenes(server, before, after)
        if args.keep:
            console.print(f"Maildir kept in {root}")
        return scenes


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=args.json)
    scenes = asyncio.run(run_demo(args, console))
    render_summary(console, scenes)
    if args.json:
        print(json.dumps({s.title: s.facts for s in scenes}, indent=2))
    return 0
