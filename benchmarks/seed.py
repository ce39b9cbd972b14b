"""Deterministic Maildir++ seeding: the same bytes, names and dates for every server and run.

Messages come from ``random.Random(seed)`` in a realistic mix: 70 % plain text of 2-10 KB, 25 %
multipart of 20-100 KB with a base64 attachment, 5 % of 0.5-2 MB. They are written once into a
template tree under the cache directory (tmp/ then rename into new/, names carrying ``,S=`` and
``,W=``, CRLF content, mtime = internal date) and each server gets a hard-linked copy, so every
server opens exactly the same never-seen Maildir (no ``dovecot-uidlist``, no index) and assigns
UIDs itself on first open. Maildir files are never rewritten in place, so hard links are safe.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

#: Bump when the generator changes: cached templates with another version are rebuilt.
SEED_VERSION = 1
#: Internal dates start here (2023-11-14) and advance 37 s per message.
BASE_TIME = 1_700_000_000
PASSWORD = "benchpw"  # noqa: S105 - the seeded test users' password
HOST = "bench.test"

#: Words a search finds in a known share of messages (see ``search_terms``).
TEXT_TERM = "zyzzogeton"  # in the body of about 2 % of the messages
SUBJECT_TERM = "invoice"  # in about 5 % of the subjects
FROM_TERM = "alice"  # about 10 % of the senders

_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "de", "pa", "gro", "stan", "bel")
_SENDERS = ("bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A template tree: ``users`` maps a user name to (message count, kind) with kind
    ``mix`` (the realistic mix), ``text`` (only the 2-10 KB plain-text class) or ``thread``
    (short plain-text messages of which 40 % answer an earlier one: ``Re:`` subjects,
    In-Reply-To and References, Date headers up to an hour before arrival)."""

    name: str
    seed: int
    users: tuple[tuple[str, int, str], ...]


class MessageFactory:
    """Builds message bytes (CRLF) from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(600)
        ]
        self.words = words
        self.lines = [self._line() for _ in range(1500)]
        #: (Message-ID, subject, References) of the ``thread`` messages made so far.
        self.earlier: list[tuple[str, str, list[str]]] = []

    def _line(self) -> str:
        out: list[str] = []
        length = 0
        while length < 66:
            word = self.rng.choice(self.words)
            out.append(word)
            length += len(word) + 1
        return " ".join(out)

    def _text(self, size: int) -> str:
        rng, lines = self.rng, self.lines
        parts: list[str] = []
        total = 0
        while total < size:
            line = rng.choice(lines)
            if rng.random() < 0.0005:
                line = f"{line[:40]} {TEXT_TERM} {line[40:60]}"
            parts.append(line)
            total += len(line) + 2
        return "\r\n".join(parts) + "\r\n"

    def _headers(self, index: int, user: str, when: int, extra: list[str]) -> list[str]:
        rng = self.rng
        sender = FROM_TERM if rng.random() < 0.10 else rng.choice(_SENDERS)
        subject = " ".join(rng.choice(self.words) for _ in range(rng.randint(2, 7)))
        if rng.random() < 0.05:
            subject = f"{SUBJECT_TERM} {subject}"
        date = _rfc2822(when)
        return [
            f"Return-Path: <{sender}@example.org>",
            f"From: {sender.title()} <{sender}@example.org>",
            f"To: {user} <{user}@{HOST}>",
            f"Subject: {subject.capitalize()}",
            f"Date: {date}",
            f"Message-ID: <{index}.{user}.{when}@example.org>",
            "MIME-Version: 1.0",
            *extra,
        ]

    def message(self, index: int, user: str, when: int, kind: str) -> bytes:
        rng = self.rng
        if kind == "thread":
            return self._thread_message(index, user, when)
        roll = rng.random() if kind == "mix" else 0.0
        if roll < 0.70:
            body = self._text(rng.randint(2_000, 10_000))
            head = self._headers(index, user, when, ["Content-Type: text/plain; charset=utf-8"])
            return ("\r\n".join(head) + "\r\n\r\n" + body).encode()
        size = rng.randint(20_000, 100_000) if roll < 0.95 else rng.randint(500_000, 2_000_000)
        return self._multipart(index, user, when, size)

    def _thread_message(self, index: int, user: str, when: int) -> bytes:
        rng = self.rng
        head = self._headers(index, user, when, ["Content-Type: text/plain; charset=utf-8"])
        own = next(h for h in head if h.startswith("Message-ID: "))[12:]
        subject = next(h for h in head if h.startswith("Subject: "))[9:]
        refs: list[str] = []
        if self.earlier and rng.random() < 0.40:
            parent, parent_subject, parent_refs = rng.choice(self.earlier[-200:])
            subject = parent_subject if parent_subject[:4] == "Re: " else "Re: " + parent_subject
            refs = [*parent_refs, parent][-10:]
            head += [f"In-Reply-To: {parent}", "References: " + " ".join(refs)]
        sent = _rfc2822(when - rng.randint(0, 3600))
        head = [
            f"Subject: {subject}"
            if h.startswith("Subject: ")
            else (f"Date: {sent}" if h.startswith("Date: ") else h)
            for h in head
        ]
        self.earlier.append((own, subject, refs))
        return ("\r\n".join(head) + "\r\n\r\n" + self._text(rng.randint(300, 1_500))).encode()

    def _multipart(self, index: int, user: str, when: int, size: int) -> bytes:
        rng = self.rng
        boundary = f"=_bench_{index}_{when}"
        text = self._text(rng.randint(500, 3_000))
        raw = rng.randbytes(max(1, (size - len(text) - 1_000) * 3 // 4))
        b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n").decode()
        name = f"report-{index}.pdf"
        head = self._headers(
            index, user, when, [f'Content-Type: multipart/mixed; boundary="{boundary}"']
        )
        parts = [
            "\r\n".join(head),
            "",
            "This is a multi-part message in MIME format.",
            f"--{boundary}",
            "Content-Type: text/plain; charset=utf-8",
            "",
            text,
            f"--{boundary}",
            f'Content-Type: application/pdf; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            "Content-Transfer-Encoding: base64",
            "",
            b64,
            f"--{boundary}--",
            "",
        ]
        return "\r\n".join(parts).encode()


def _rfc2822(when: int) -> str:
    from email.utils import formatdate

    return formatdate(when, usegmt=False, localtime=False)


def write_maildir_message(root: Path, seq: int, data: bytes, when: int) -> str:
    """Deliver the Maildir way (tmp/ then rename into new/); returns the base name."""
    name = f"{when}.M{seq % 1_000_000}P4242Q{seq}.{HOST},S={len(data)},W={len(data)}"
    tmp = root / "tmp" / name
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.utime(tmp, (when, when))
    os.rename(tmp, root / "new" / name)
    return name


def make_user_dir(root: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)


def _build(spec: TemplateSpec, dest: Path) -> None:
    for user, count, kind in spec.users:
        udir = dest / user
        make_user_dir(udir)
        factory = MessageFactory(random.Random(f"{spec.seed}:{user}:{kind}"))
        for i in range(count):
            when = BASE_TIME + i * 37
            write_maildir_message(udir, i, factory.message(i, user, when, kind), when)


def ensure_template(cache: Path, spec: TemplateSpec) -> Path:
    """The template tree for ``spec`` under ``cache``, built once and reused while unchanged."""
    dest = cache / f"{spec.name}-s{spec.seed}-v{SEED_VERSION}"
    marker = dest / ".complete"
    wanted = json.dumps(asdict(spec), sort_keys=True)
    if marker.exists() and marker.read_text() == wanted:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    partial = dest.with_name(dest.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    _build(spec, partial)
    (partial / ".complete").write_text(wanted)
    partial.rename(dest)
    return dest


def link_copy(template: Path, dest: Path) -> int:
    """Hard-link every message of ``template`` into ``dest`` (copy across filesystems)."""
    count = 0
    for dirpath, _dirs, files in os.walk(template):
        rel = Path(dirpath).relative_to(template)
        target = dest / rel
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name == ".complete":
                continue
            src = Path(dirpath) / name
            try:
                os.link(src, target / name)
            except OSError:
                shutil.copy2(src, target / name)
            count += 1
    return count


def template_stats(template: Path, user: str) -> tuple[int, int]:
    """(messages, bytes) in ``user``'s INBOX of a template."""
    names = os.listdir(template / user / "new")
    return len(names), sum(int(n.split(",S=")[1].split(",")[0]) for n in names)


def write_users_file(path: Path, users: list[str]) -> None:
    """``user:{PLAIN}password`` lines: read by both mailsrv and Dovecot's passwd-file."""
    path.write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in users))
