"""Crash safety: SIGKILL the server in the middle of each kind of write, restart, lose nothing.

After every kill and restart: no half message is visible (each file is whole: its size matches
its ,S= and it ends with the END marker), every delivery the client saw acknowledged is there,
no UID ever names a different message than before, new UIDs go above every old one, and
UIDVALIDITY is unchanged.
"""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import re
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.server_process import ServerProcess, start_server

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
USER = "alice"
END = b"END-OF-MESSAGE\r\n"
_ID = re.compile(rb"Message-ID: <crash-(\d+)@t>")


def _message(n: int, size: int = 2000) -> bytes:
    return (
        f"From: t@example.org\r\nSubject: crash {n}\r\nMessage-ID: <crash-{n}@t>\r\n\r\n".encode()
        + b"y" * size
        + b"\r\n"
        + END
    )


def _files(maildir: Path) -> list[Path]:
    root = maildir / USER
    out: list[Path] = []
    for folder in [root, *root.glob(".*")]:
        for sub in ("new", "cur"):
            if (folder / sub).is_dir():
                out.extend(p for p in (folder / sub).iterdir() if p.is_file())
    return out


def _check_whole(maildir: Path) -> set[int]:
    """Every visible message is whole; returns the ids present."""
    ids: set[int] = set()
    for path in _files(maildir):
        data = path.read_bytes()
        assert data.endswith(END), f"partial message visible: {path.name}"
        m = re.search(r",S=(\d+)", path.name)
        if m:
            assert int(m.group(1)) == len(data), f"size mismatch: {path.name}"
        found = _ID.search(data)
        if found:
            ids.add(int(found.group(1)))
    return ids


def _uid_map(port: int, folder: str = "INBOX") -> tuple[int, dict[int, int]]:
    imap = imaplib.IMAP4(HOST, port)
    imap.login(USER, "pw")
    imap.select(folder)
    raw_validity = imap.untagged_responses["UIDVALIDITY"][-1]
    assert isinstance(raw_validity, bytes)
    validity = int(raw_validity)
    _, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    out: dict[int, int] = {}
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0])
            mid = _ID.search(item[1])
            if uid and mid:
                out[int(uid.group(1))] = int(mid.group(1))
    imap.logout()
    return validity, out


def _deliver(port: int, first: int, count: int, acked: list[int]) -> None:
    try:
        with smtplib.SMTP(HOST, port, timeout=10) as smtp:
            for n in range(first, first + count):
                smtp.sendmail("t@example.org", [f"{USER}@localhost"], _message(n))
                acked.append(n)
    except (OSError, smtplib.SMTPException):
        pass  # the server died under us: that is the point


def _imap_worker(port: int, work: Callable[[imaplib.IMAP4], None]) -> None:
    """Run ``work`` on a logged-in IMAP client; the socket is closed whatever happens."""
    try:
        imap = imaplib.IMAP4(HOST, port, timeout=10)
    except OSError:
        return
    try:
        imap.login(USER, "pw")
        work(imap)
    except (OSError, imaplib.IMAP4.error):
        pass  # the server died under us: that is the point
    finally:
        with contextlib.suppress(OSError):
            imap.shutdown()


def _append(port: int, first: int, count: int, acked: list[int]) -> None:
    def work(imap: imaplib.IMAP4) -> None:
        for n in range(first, first + count):
            typ, _ = imap.append("INBOX", "(\\Seen)", None, _message(n, 200_000))
            if typ == "OK":
                acked.append(n)

    _imap_worker(port, work)


#: Messages per MULTIAPPEND in the multiappend operation: the ids of one command, together.
BATCH = 5


def _multiappend(port: int, first: int, count: int, acked: list[int]) -> None:
    def work(imap: imaplib.IMAP4) -> None:
        for start in range(first, first + count, BATCH):
            ids = range(start, start + BATCH)
            literals = [
                b"{%d+}\r\n%s" % (len(_message(n, 50_000)), _message(n, 50_000)) for n in ids
            ]
            tag = imap._new_tag()  # imaplib has no MULTIAPPEND: the command by hand
            imap.send(tag + b" APPEND INBOX " + b" ".join(literals) + b"\r\n")
            while not (line := imap.readline()).startswith(tag):
                if not line:
                    return
            if line.startswith(tag + b" OK"):
                acked.extend(ids)

    _imap_worker(port, work)


def _check_sets(present: set[int], first: int) -> None:
    """Every MULTIAPPEND is all there or not at all (a set the kill left half renamed on
    disk is taken back by the restarted server before it gives out any UID)."""
    for start in {first + (n - first) // BATCH * BATCH for n in present if n >= first}:
        batch = set(range(start, start + BATCH))
        assert batch <= present, f"part of one MULTIAPPEND visible: {sorted(batch & present)}"


def _move_all(port: int, acked: list[int]) -> None:
    def work(imap: imaplib.IMAP4) -> None:
        imap.select("INBOX")
        imap.uid("MOVE", "1:*", "Archive")
        imap.uid("COPY", "1:*", "Drafts")

    _imap_worker(port, work)


def _expunge_all(port: int, acked: list[int]) -> None:
    def work(imap: imaplib.IMAP4) -> None:
        imap.select("INBOX")
        imap.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()

    _imap_worker(port, work)


class _ClosingPOP3(poplib.POP3):
    """poplib's client, which also closes its socket when the greeting never comes."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        try:
            super().__init__(host, port, timeout)
        except Exception:
            if getattr(self, "sock", None) is not None:
                self.close()
            raise


def _pop3_quit(port: int, acked: list[int]) -> None:
    try:
        pop = _ClosingPOP3(HOST, port, timeout=10)
    except (OSError, poplib.error_proto):
        return  # killed between accept and greeting
    try:
        pop.user(USER)
        pop.pass_("pw")
        count, _ = pop.stat()
        for n in range(1, count + 1):
            pop.dele(n)
        pop.quit()
    except (OSError, poplib.error_proto):
        pass
    finally:
        pop.close()


Operation = Callable[[dict[str, int], list[int]], None]

OPERATIONS: dict[str, tuple[Operation, bool]] = {
    # name: (operation, needs existing messages)
    "smtp-delivery": (lambda p, a: _deliver(p["smtp"], 1000, 400, a), False),
    "imap-append": (lambda p, a: _append(p["imap"], 2000, 40, a), False),
    "imap-multiappend": (lambda p, a: _multiappend(p["imap"], 3000, 100, a), False),
    "copy-move": (lambda p, a: _move_all(p["imap"], a), True),
    "expunge": (lambda p, a: _expunge_all(p["imap"], a), True),
    "pop3-quit": (lambda p, a: _pop3_quit(p["pop3"], a), True),
}


def _seed(server: ServerProcess, count: int = 150) -> list[int]:
    acked: list[int] = []
    _deliver(server.ports["smtp"], 1, count, acked)
    assert len(acked) == count
    return acked


@pytest.mark.parametrize("delay", [0.05, 0.3])
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_sigkill_mid_operation_loses_nothing(tmp_path: Path, operation: str, delay: float) -> None:
    maildir = tmp_path / "mail"
    server = start_server(maildir, tmp_path)
    run, needs_seed = OPERATIONS[operation]
    seeded = _seed(server) if needs_seed else []
    validity, before = _uid_map(server.ports["imap"])
    acked: list[int] = []
    worker = threading.Thread(target=run, args=(server.ports, acked), daemon=True)
    worker.start()
    time.sleep(delay)
    server.kill()
    worker.join(30)

    present = _check_whole(maildir)
    restarted = start_server(maildir, tmp_path, name="restarted")
    try:
        after_validity, after = _uid_map(restarted.ports["imap"])
        assert after_validity == validity, "UIDVALIDITY changed across the crash"
        if operation == "imap-multiappend":  # what a client sees after the restart
            _check_sets(set(after.values()), 3000)
        for uid, mid in after.items():
            if uid in before:
                assert before[uid] == mid, f"UID {uid} now names another message"
        # Deliveries the client saw acknowledged survived (they may have moved folders).
        missing = set(acked) - present
        assert not missing, f"acknowledged messages lost: {sorted(missing)[:10]}"
        if operation in ("copy-move",):
            assert set(seeded) <= present, "a message was lost while moving"
        # A new delivery gets a UID above every UID handed out before.
        _deliver(restarted.ports["smtp"], 9000, 1, [])
        _, final = _uid_map(restarted.ports["imap"])
        new_uid = max(uid for uid, mid in final.items() if mid == 9000)
        assert new_uid > max([*before, *after, 0])
    finally:
        assert restarted.stop() == 0
