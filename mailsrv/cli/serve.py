"""``mailsrv serve``: run ``MailServer`` until SIGTERM or Ctrl-C, with a banner of its endpoints."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO, get_args

from mailsrv import log_format
from mailsrv.cli.common import CliError, build_config, with_default_users
from mailsrv.config import Config, PersonaName
from mailsrv.personas.catalog import persona_named
from mailsrv.scan.probe import probe
from mailsrv.server import MailServer, StartupError

_LABELS: dict[str, tuple[str, str]] = {
    "smtp": ("SMTP", "STARTTLS; delivers to local users"),
    "submission": ("submission", "STARTTLS; AUTH required"),
    "smtps": ("SMTPS", "implicit TLS; AUTH required"),
    "pop3": ("POP3", "STLS"),
    "pop3s": ("POP3S", "implicit TLS"),
    "imap": ("IMAP", "STARTTLS"),
    "imaps": ("IMAPS", "implicit TLS"),
    "lmtp": ("LMTP", "STARTTLS; an MTA delivers to local users"),
}


log = logging.getLogger("mailsrv")


def raise_fd_limit() -> tuple[int, int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit: every connection (10,000 IMAP IDLE
    sessions) is a descriptor. Returns the soft limit before, the soft limit now, the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft, soft, hard
    # An unlimited hard limit cannot be the soft one on Linux: fs.nr_open caps it.
    want = _nr_open(soft) if hard == resource.RLIM_INFINITY else hard
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d: %s", soft, exc)
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard


def _nr_open(fallback: int) -> int:
    try:
        with open("/proc/sys/fs/nr_open") as fh:
            return int(fh.read())
    except (OSError, ValueError):
        return fallback


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port-offset", type=int, help="added to every standard port (3000 with --dev)")
    p.add_argument(
        "--dev",
        action="store_true",
        default=None,
        help="developer mode: ports +3000, any password, mailboxes made on first use",
    )
    p.add_argument("--ready-file", type=Path, metavar="PATH", help="write JSON here when ready")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), help="event loop (auto)")
    p.add_argument("--trace", action="store_true", default=None, help="print every line")
    p.add_argument("--trace-file", type=Path, metavar="F", help="append transcripts as JSON")
    p.add_argument("--http-port", type=int, metavar="N", help="web console port (8025)")
    p.add_argument(
        "--no-http", dest="http_enabled", action="store_false", default=None, help="no console"
    )
    p.add_argument(
        "--ephemeral",
        action="store_true",
        help="every port 0 (see the banner or --ready-file); a temporary Maildir unless "
        "--maildir is given, removed at exit",
    )
    p.add_argument("--pop3-delete", choices=("expunge", "flag", "trash"), help="POP3 DELE mode")
    p.add_argument(
        "--workers",
        type=parse_workers,
        default=1,
        metavar="N|auto",
        help="worker processes sharing the ports (default 1: one process; auto: one per core)",
    )
    p.add_argument(
        "--scan",
        action="store_true",
        help="scan mail at delivery with the local spamd and clamd (their default ports and "
        "sockets) where [scan] names no engine; the banner says what answered",
    )
    p.add_argument(
        "--persona",
        choices=get_args(PersonaName),
        metavar="NAME",
        help="present IMAP as this server does (gmail, outlook, icloud, dovecot, greenmail, "
        "rev1; mailsrv personas lists them)",
    )
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING ... (default INFO)")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text (default) or json: one object per line (time, level, session, user, ...)",
    )


def parse_workers(value: str) -> int:
    """``--workers``: a number of processes, at least 1, or ``auto`` (one per core)."""
    if value == "auto":
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of workers: give 1 or more, or auto"
        ) from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count}: give 1 or more workers, or auto")
    return count


def banner(config: Config, info: dict[str, Any], out: TextIO, scanning: Sequence[str] = ()) -> None:
    """What ``mailsrv serve`` prints once ready: ``info`` is the ready file's content."""
    cfg = config
    mode = "dev mode" if cfg.dev else "production mode"
    workers = info.get("worker_pids")
    if workers:
        pids = ", ".join(str(pid) for pid in workers)
        print(
            f"mailsrv running ({mode}), supervisor pid {info['pid']}, "
            f"{len(workers)} workers: pids {pids}",
            file=out,
        )
    else:
        print(f"mailsrv running ({mode}), pid {info['pid']}", file=out)
    for name, port in info["ports"].items():
        if name == "http":
            print(f"  {'console':<11} http://{cfg.host}:{port}/  (web console, REST API)", file=out)
            continue
        label, what = _LABELS[name]
        print(f"  {label:<11} {cfg.host}:{port:<6} {what}", file=out)
    if cfg.lmtp_socket is not None:
        print(f"  {'LMTP':<11} {cfg.lmtp_socket.resolve()}  (UNIX socket)", file=out)
    print(f"Maildir:  {cfg.maildir.resolve()}", file=out)
    if cfg.persona != "mailsrv":
        print(
            f"Persona:  {cfg.persona}: IMAP presents itself as {persona_named(cfg.persona).title}",
            file=out,
        )
    if cfg.dev:
        print(f"Auth:     dev mode: any password, except users in {cfg.users_file}", file=out)
    else:
        print(f"Auth:     users file {cfg.users_file} (mailsrv user add NAME)", file=out)
    if info.get("ca_file"):
        print(f"Trust CA: {info['ca_file']}", file=out)
    for n, line in enumerate(scanning):
        print(f"{'Scanning:' if n == 0 else '':<9} {line}", file=out)
    print("Press Ctrl-C to stop.", file=out, flush=True)


async def _run(
    config: Config, formatter: log_format.JsonFormatter | None = None, look_for_scan: bool = False
) -> None:
    scanning: list[str] = []
    if look_for_scan or config.scan.enabled:
        scan, scanning = await probe(config.scan, look_for_scan)
        config = dataclasses.replace(config, scan=scan)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with MailServer(config) as server:
            loop.add_signal_handler(signal.SIGHUP, server.reload)
            if formatter is not None:
                formatter.lookup = server.context.sessions.live.get
            # Start-up garbage is there for good: keep the collector from walking it again.
            gc.freeze()
            gc.enable()
            banner(config, server.ready_info(), sys.stdout, scanning)
            await stop.wait()
            print("mailsrv: shutting down", file=sys.stderr, flush=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _supervise(
    config: Config,
    workers: int,
    formatter: log_format.JsonFormatter | None,
    look_for_scan: bool,
) -> int:
    from mailsrv.workers.supervisor import supervise

    scanning: list[str] = []
    if look_for_scan or config.scan.enabled:
        # Once, before the workers are forked (the loop is gone again by then).
        scan, scanning = asyncio.run(probe(config.scan, look_for_scan))
        config = dataclasses.replace(config, scan=scan)
    status = supervise(
        config,
        workers,
        loop_factory=_loop_factory(config.loop),
        formatter=formatter,
        on_ready=lambda info: banner(config, info, sys.stdout, scanning),
    )
    if status != 0:
        raise CliError("a worker could not start (see above)", status)
    return status


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise CliError("--loop uvloop: uvloop is not installed") from exc
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def cmd_serve(args: argparse.Namespace) -> int:
    config = build_config(
        args,
        default_users=False,  # beside the Maildir root, once --ephemeral has picked it
        host=args.host,
        port_offset=args.port_offset,
        dev=args.dev,
        ready_file=args.ready_file,
        loop=args.loop,
        trace=args.trace,
        trace_file=args.trace_file,
        http_port=args.http_port,
        http_enabled=args.http_enabled,
        pop3_delete=args.pop3_delete,
        persona=args.persona,
        log_level=args.log_level,
        log_format=args.log_format,
    )
    temp_maildir: Path | None = None
    if args.ephemeral:
        config = config.with_ephemeral_ports()
        if args.maildir is None:
            temp_maildir = Path(tempfile.mkdtemp(prefix="mailsrv-"))
            config = dataclasses.replace(config, maildir=temp_maildir / "mail")
    config = with_default_users(config)
    formatter = log_format.install(config.log_level, config.log_format)
    before, soft, hard = raise_fd_limit()
    log.info(
        "open-files limit (RLIMIT_NOFILE): %s%s (hard limit %s)",
        _limit_text(soft),
        f", raised from {before}" if soft != before else "",
        _limit_text(hard),
    )
    # Importing the listeners makes many long-lived objects; no collection is useful meanwhile.
    gc.disable()
    try:
        if args.workers > 1:
            return _supervise(config, args.workers, formatter, args.scan)
        with asyncio.Runner(loop_factory=_loop_factory(config.loop)) as runner:
            runner.run(_run(config, formatter, look_for_scan=args.scan))
    except StartupError as exc:
        raise CliError(str(exc.strerror or exc)) from exc
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        pass
    finally:
        gc.enable()
        if temp_maildir is not None:
            shutil.rmtree(temp_maildir, ignore_errors=True)
    return 0


def _limit_text(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)
