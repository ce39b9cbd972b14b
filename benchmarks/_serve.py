"""Stand-in for ``python -m mailsrv serve --ephemeral`` while the CLI is not there yet.

``python -m benchmarks._serve MAILDIR READY_FILE CERTS USERS``: every service but HTTP on an
ephemeral port, dev mode, the ready file written by ``MailServer``; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from benchmarks.loadgen import raise_nofile_limit


async def serve(maildir: Path, ready: Path, certs: Path, users: Path) -> None:
    from mailsrv.config import Config
    from mailsrv.server import MailServer

    config = Config(
        maildir=maildir,
        ready_file=ready,
        certs_dir=certs,
        users_file=users,
        dev=True,
        allow_plaintext_auth=True,
        http_enabled=False,
    ).with_ephemeral_ports()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with MailServer(config):
        await stop.wait()


def main() -> None:
    raise_nofile_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    maildir, ready, certs, users = (Path(a) for a in sys.argv[1:5])
    asyncio.run(serve(maildir, ready, certs, users))


if __name__ == "__main__":
    main()
