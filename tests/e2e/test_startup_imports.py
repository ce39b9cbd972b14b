"""Start-up loads only what the first LOGIN needs: aiosmtpd (SMTP and LMTP) comes at the first
SMTP or LMTP connection, IMAP's authenticated and selected states at the first command after
LOGIN, ``tomllib`` only with a config file, argon2-cffi and bcrypt at the first password stored
with them, IMAP's sorting (collation, base subjects, addresses) at the first SORT or THREAD.
Checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from mailsrv.config import Config
    from mailsrv.server import MailServer

    LAZY = ("aiosmtpd", "aiosmtpd.smtp", "mailsrv.smtp.session", "mailsrv.smtp.lmtp", "tomllib")
    IMAP = ("mailsrv.imap.authenticated", "mailsrv.imap.selected")

    async def imap(port, out):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        for tag, command in ((b"a", b"LOGIN probe pw"), (b"b", b"SELECT INBOX")):
            out[tag.decode() + "_before"] = [m for m in IMAP if m in sys.modules]
            out[tag.decode() + "_sorting"] = "mailsrv.imap.sort" in sys.modules
            writer.write(tag + b" " + command + b"\\r\\n")
            while not (line := await reader.readline()).startswith(tag + b" "):
                pass
            out[tag.decode()] = line.decode()[:5]
        writer.close()

    async def main(tmp, certs):
        config = Config(maildir=Path(tmp) / "mail", certs_dir=Path(certs), dev=True,
                        allow_plaintext_auth=True, http_enabled=False).with_ephemeral_ports()
        out = {}
        async with MailServer(config) as server:
            out["started"] = [m for m in LAZY if m in sys.modules]
            await imap(server.ports.imap, out)
            out["imap_after"] = [m for m in IMAP if m in sys.modules]
            out["hash_libs"] = [m for m in ("argon2", "bcrypt") if m in sys.modules]
            for port in (server.ports.smtp, server.ports.lmtp):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                out.setdefault("greetings", []).append((await reader.readline()).decode())
                writer.write(b"QUIT\\r\\n")
                out.setdefault("quit", []).append((await reader.readline()).decode())
                writer.close()
            out["after"] = [m for m in LAZY if m in sys.modules]
        print(json.dumps(out))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def test_aiosmtpd_loads_at_the_first_smtp_connection(tmp_path: Path, certs_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(certs_dir)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert out["started"] == []
    assert out["a_before"] == [] and out["a"] == "a OK "  # LOGIN: logged-out handlers only
    assert out["b_before"] == [] and out["b"] == "b OK "
    assert out["imap_after"] == ["mailsrv.imap.authenticated", "mailsrv.imap.selected"]
    assert out["hash_libs"] == []  # a dev-mode LOGIN checks no Argon2 or bcrypt hash
    assert not out["b_sorting"]  # up to the first LOGIN, nothing sorts
    assert [g[:4] for g in out["greetings"]] == ["220 ", "220 "]
    assert [q[:4] for q in out["quit"]] == ["221 ", "221 "]
    assert out["after"] == [
        "aiosmtpd",
        "aiosmtpd.smtp",
        "mailsrv.smtp.session",
        "mailsrv.smtp.lmtp",
    ]
