"""mbsync (isync) two-way sync against mailsrv: messages, folders and flags round-trip."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mailsrv.server import MailServer

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed"),
]


def message(n: int, subject: str) -> bytes:
    return (
        f"From: n{n}@example.org\r\nTo: ann@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{n}.{subject}@example.org>\r\n\r\nbody {n}\r\n"
    ).encode()


def write_config(tmp: Path, port: int, mech: str) -> Path:
    local = tmp / "local"
    local.mkdir(exist_ok=True)
    rc = tmp / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount test
Host 127.0.0.1
Port {port}
User ann
Pass pw
SSLType None
AuthMechs {mech}

IMAPStore remote
Account test

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
"""
    )
    return rc


def run_mbsync(rc: Path) -> str:
    proc = subprocess.run(
        ["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def local_messages(folder: Path) -> dict[str, str]:
    """Subject -> maildir flag letters, for cur/ and new/."""
    out = {}
    for sub in ("cur", "new"):
        for f in (folder / sub).iterdir():
            subject = next(
                line for line in f.read_text().splitlines() if line.startswith("Subject: ")
            )
            out[subject[9:]] = f.name.partition(":2,")[2]
    return out


async def subjects(server: MailServer, folder: str) -> dict[str, frozenset[str]]:
    box = await server.store.open("ann", folder)
    out = {}
    for m in (await box.snapshot()).messages:
        head = await box.read_header(m.uid)
        subject = next(x for x in head.decode().split("\r\n") if x.startswith("Subject: "))
        out[subject[9:]] = m.flags
    return out


@pytest.mark.parametrize("mech", ["LOGIN", "PLAIN"])
async def test_mbsync_two_way(make_server: Any, tmp_path: Path, mech: str) -> None:
    async with make_server(services={"imap"}) as server:
        store = server.store
        await store.ensure_user("ann")
        await store.deliver("ann", message(1, "one"))
        await store.deliver("ann", message(2, "two"), flags=["\\Seen"])
        await store.create_folder("ann", "Work")
        await store.deliver("ann", message(3, "three"), folder="Work")
        rc = write_config(tmp_path, server.ports.imap, mech)

        await asyncio.to_thread(run_mbsync, rc)
        # mbsync (1.4 and later) compresses when offered: this sync ran over COMPRESS=DEFLATE
        trace = [(t.direction, t.text) for t in server.context.tracer.lines if t.protocol == "imap"]
        assert any(d == "C" and text.endswith(" COMPRESS DEFLATE") for d, text in trace)
        assert any(d == "S" and text.endswith(" OK Begin compression.") for d, text in trace)
        local = tmp_path / "local"
        assert local_messages(local / "INBOX") == {"one": "", "two": "S"}
        assert local_messages(local / "Work") == {"three": ""}
        assert (local / "Trash").is_dir()

        # Local changes: flag "one", add a message to Work, create a folder with a message.
        files = [*(local / "INBOX" / "cur").iterdir(), *(local / "INBOX" / "new").iterdir()]
        [one] = [f for f in files if "Subject: one" in f.read_text()]
        one.rename(local / "INBOX" / "cur" / (one.name.partition(":2,")[0] + ":2,FS"))
        (local / "Work" / "new" / "1.local.host").write_bytes(message(4, "four"))
        for sub in ("cur", "new", "tmp"):
            (local / "Home" / sub).mkdir(parents=True)
        (local / "Home" / "new" / "2.local.host").write_bytes(message(5, "five"))
        # Server changes: a new message, and "two" deleted and expunged.
        await store.deliver("ann", message(6, "six"))
        box = await store.open("ann")
        await box.expunge([2])

        await asyncio.to_thread(run_mbsync, rc)
        server_inbox = await subjects(server, "INBOX")
        assert server_inbox["one"] == frozenset({"\\Seen", "\\Flagged"})
        assert set(server_inbox) == {"one", "six"}
        assert set(await subjects(server, "Work")) == {"three", "four"}
        assert set(await subjects(server, "Home")) == {"five"}
        assert local_messages(local / "INBOX") == {"one": "FS", "six": ""}

        # A third run changes nothing on either side.
        await asyncio.to_thread(run_mbsync, rc)
        assert set(await subjects(server, "INBOX")) == {"one", "six"}
        assert set(local_messages(local / "Work")) == {"three", "four"}
