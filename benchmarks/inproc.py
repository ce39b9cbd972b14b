"""In-process fixture timings: ``python -m benchmarks.inproc ITERATIONS CERTS_DIR``.

Prints one JSON line: ``start_stop`` (seconds per ``MailServer`` start+stop, certificates made
beforehand, one untimed warm-up start so imports are not counted) and ``reset`` (seconds per
``store.reset()`` after 10 messages were delivered to each of 2 users).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path


async def measure(iterations: int, certs: Path) -> dict[str, list[float]]:
    from mailsrv.config import Config, Limits
    from mailsrv.server import MailServer
    from mailsrv.tls import ensure_certificates

    ensure_certificates(certs)
    with tempfile.TemporaryDirectory(prefix="mailsrv-bench-") as tmp:
        config = Config(
            maildir=Path(tmp) / "mail",
            certs_dir=certs,
            dev=True,
            allow_plaintext_auth=True,
            http_enabled=False,
            limits=Limits(auth_failure_delay=0.0),
        ).with_ephemeral_ports()
        async with MailServer(config):
            pass
        start_stop = []
        for _ in range(iterations):
            start = time.perf_counter()
            async with MailServer(config) as server:
                if "imap" not in server.ports.as_dict():
                    raise SystemExit("MailServer started without an IMAP listener")
            start_stop.append(time.perf_counter() - start)
        reset = []
        message = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
        async with MailServer(config) as server:
            for _ in range(iterations):
                for user in ("ann", "bob"):
                    for _ in range(10):
                        await server.store.deliver(user, message)
                start = time.perf_counter()
                await server.store.reset()
                reset.append(time.perf_counter() - start)
    return {"start_stop": start_stop, "reset": reset}


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    result = asyncio.run(measure(int(sys.argv[1]), Path(sys.argv[2])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
