"""Regenerate the Dovecot golden answers for the MIME corpus (tests/data/mime/*.eml).

For every corpus message this puts the message's wire form (line ends made CRLF, as the store
hands messages out) alone into a fresh Maildir, runs Debian's Dovecot ``imap`` binary as a
pre-authenticated process on stdin/stdout (no network, no daemon), asks it for ENVELOPE,
BODY, BODYSTRUCTURE, a list of BODY[section] / BINARY items and a list of SEARCH queries, and
writes the answers to ``<name>.golden`` (JSON; byte strings as latin-1 text so they round-trip).

Run by hand after adding a corpus file: ``.venv/bin/python tests/data/mime/regen_golden.py``.
Dovecot refuses to access mail as root, so as root it runs the binary as ``nobody``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
IMAP_BINARY = "/usr/lib/dovecot/imap"

FETCH_ITEMS = [
    "ENVELOPE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822.SIZE",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[HEADER.FIELDS (From Subject)]",
    "BODY.PEEK[HEADER.FIELDS.NOT (From Subject)]",
    "BODY.PEEK[HEADER.FIELDS (content-type X-Missing)]",
    "BINARY.SIZE[]",
]
PARTS = ["1", "2", "3", "9", "1.1", "1.2", "1.9", "2.1", "2.2", "1.1.1", "2.1.1", "2.1.2"]
for _p in PARTS:
    FETCH_ITEMS += [f"BODY.PEEK[{_p}]", f"BODY.PEEK[{_p}.MIME]", f"BINARY.SIZE[{_p}]"]
    FETCH_ITEMS += [f"BODY.PEEK[{_p}.HEADER]", f"BODY.PEEK[{_p}.TEXT]", f"BINARY.PEEK[{_p}]"]

SEARCHES = [
    "ALL",
    "SUBJECT report",
    "SUBJECT café",
    "SUBJECT crème",
    "SUBJECT grüße",
    "SUBJECT ünïcödé",
    "SUBJECT QUOTED",
    "FROM andré",
    "FROM jürgen",
    'FROM "last, first"',
    "FROM first.last",
    "FROM ann",
    "TO jörg",
    "TO bob",
    "TO zoë",
    "CC dave",
    "CC team",
    "BCC hidden",
    "BODY café",
    "TEXT café",
    "BODY coupée",
    'BODY "doux et qui"',
    "BODY cafe",
    'TEXT "filename"',
    "BODY ünïcode",
    "BODY lunch",
    "TEXT lunch",
    "BODY picture",
    "TEXT report.pdf",
    "BODY ä",
    "BODY grüße",
    'BODY "inner text"',
    "BODY Hello",
    "BODY JVBERi0",
    "BODY %PDF",
    "TEXT Q2Fmw6k",
    'BODY "Café au lait"',
    "TEXT mixed",
    "HEADER Content-Type multipart",
    'HEADER X-Missing ""',
    'HEADER Subject ""',
    'HEADER In-Reply-To "c@d"',
    "SENTON 3-Jun-2024",
    "SENTSINCE 5-Jun-2024",
    "SENTBEFORE 5-Jun-2024",
    "LARGER 500",
    "SMALLER 200",
    "NOT BODY report",
    "OR SUBJECT lunch SUBJECT picture",
]


def wire_form(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", raw)


def _encode_command(tag: str, text: str) -> bytes:
    """A command with every non-ASCII word sent as a LITERAL+ (CHARSET UTF-8 prefixed)."""
    out = []
    needs_utf8 = False
    for word in re.findall(r'"[^"]*"|\S+', text):
        data = word.encode()
        if any(c >= 0x80 for c in data):
            needs_utf8 = True
            data = data.strip(b'"')
            out.append(b"{%d+}\r\n" % len(data) + data)
        else:
            out.append(data)
    body = b" ".join(out)
    if needs_utf8 and text.startswith(("SEARCH", "UID SEARCH")):
        body = body.replace(b"SEARCH", b"SEARCH CHARSET UTF-8", 1)
    return tag.encode() + b" " + body + b"\r\n"


class Dovecot:
    def __init__(self, root: Path) -> None:
        self.root = root
        conf = root / "dovecot.conf"
        conf.write_text(
            f"base_dir = {root}/run\nstate_dir = {root}/run\nlog_path = {root}/log\n"
            f"mail_location = maildir:{root}/mail/%u\nssl = no\nprotocols = imap\n"
            "listen = 127.0.0.1\n"
            "passdb {\n  driver = static\n  args = nopassword=y\n}\n"
            f"userdb {{\n  driver = static\n  args = home={root}/mail/%u\n}}\n"
        )
        self.conf = conf

    def session(self, wire: bytes, commands: list[bytes]) -> list[bytes]:
        mail = self.root / "mail"
        shutil.rmtree(mail, ignore_errors=True)
        for sub in ("new", "cur", "tmp"):
            (mail / "u" / sub).mkdir(parents=True)
        (self.root / "run").mkdir(exist_ok=True)
        (mail / "u" / "cur" / "1700000000.M1P1.golden:2,").write_bytes(wire)
        argv = [IMAP_BINARY, "-c", str(self.conf)]
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "nobody:nogroup", str(self.root)], check=True)
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
        env = {"USER": "u", "HOME": f"{self.root}/mail/u", "PATH": "/usr/bin:/bin"}
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert proc.stdin is not None and proc.stdout is not None
        responses: list[bytes] = []
        read_response(proc.stdout)  # greeting
        for command in [b"s SELECT INBOX\r\n", *commands, b"z LOGOUT\r\n"]:
            # One command at a time: Dovecot may interleave pipelined commands' responses.
            proc.stdin.write(command)
            proc.stdin.flush()
            tag = command.split(b" ", 1)[0]
            while True:
                resp = read_response(proc.stdout)
                responses.append(resp)
                if resp.startswith(tag + b" "):
                    break
        proc.stdin.close()
        proc.wait(timeout=10)
        return responses


def read_response(stream: IO[bytes]) -> bytes:
    """One whole response line from the stream, literals included."""
    current = b""
    while True:
        line = stream.readline()
        if not line:
            raise EOFError("dovecot closed the connection")
        current += line
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if not m:
            return current
        current += stream.read(int(m.group(1)))


def fetch_value(response: bytes) -> bytes:
    body = response.removeprefix(b"* 1 FETCH (").removesuffix(b")\r\n")
    if body.startswith((b"BODY[", b"BINARY[", b"BINARY.SIZE[")):
        return body[body.index(b"] ") + 2 :]
    return body.split(b" ", 1)[1]


def golden_for(dv: Dovecot, wire: bytes) -> dict[str, str]:
    commands = [_encode_command(f"f{i}", f"FETCH 1 ({item})") for i, item in enumerate(FETCH_ITEMS)]
    commands += [_encode_command(f"q{i}", f"SEARCH {q}") for i, q in enumerate(SEARCHES)]
    responses = dv.session(wire, commands)
    answers: dict[str, str] = {}
    pending: list[bytes] = []
    for resp in responses:
        tag, _, rest = resp.partition(b" ")
        if tag == b"*":
            pending.append(resp)
            continue
        if tag[:1] not in (b"f", b"q"):
            pending.clear()
            continue
        index = int(tag[1:])
        status = rest.split(b" ", 1)[0]
        if tag.startswith(b"f"):
            key = FETCH_ITEMS[index]
            fetches = [p for p in pending if p.startswith(b"* 1 FETCH")]
            ok = status == b"OK"
            value = fetch_value(fetches[0]) if ok else b"!" + rest.rstrip(b"\r\n")
        else:
            key = "SEARCH " + SEARCHES[index]
            hits = [p for p in pending if p.startswith(b"* SEARCH")]
            value = b"!" + rest.rstrip() if status != b"OK" else hits[0].rstrip()
        value = re.sub(rb" \(\d+\.\d+ \+ \d+\.\d+ secs\)\.$", b"", value)  # timing noise
        answers[key] = value.decode("latin-1")
        pending.clear()
    return answers


def main() -> int:
    names = sys.argv[1:] or sorted(p.name for p in HERE.glob("*.eml"))
    with tempfile.TemporaryDirectory(prefix="mailsrv-golden-") as tmp:
        os.chmod(tmp, 0o755)  # noqa: S103 - Dovecot runs as nobody and must reach it
        dv = Dovecot(Path(tmp))
        for name in names:
            wire = wire_form((HERE / name).read_bytes())
            answers = golden_for(dv, wire)
            out = HERE / (Path(name).stem + ".golden")
            out.write_text(json.dumps(answers, indent=1, ensure_ascii=True) + "\n")
            print(f"{name}: {len(answers)} answers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
