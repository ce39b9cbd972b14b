"""The demo's scenes: POP3 and IMAP on the same Maildir, one lesson each.

``run_scenes`` drives a running ``MailServer`` through every scene and returns what happened:
the transcripts of each device, the Maildir files before and after, and the facts (counts) a
test can check. Rendering is ``render.py``'s job; nothing here prints.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from mailsrv.demo.clients import Desktop, Laptop, Phone
from mailsrv.demo.sample_mail import (
    infected_message,
    late_message,
    sample_messages,
    spam_message,
)
from mailsrv.report.findings import Finding
from mailsrv.server import MailServer
from mailsrv.trace import TraceLine

USER = "alice"
_T = TypeVar("_T")
PASSWORD = "demo-password"  # noqa: S105  (dev mode accepts any password)


@dataclass
class Scene:
    title: str
    lesson: str
    transcripts: dict[str, list[str]] = field(default_factory=dict)
    files_before: list[str] = field(default_factory=list)
    files_after: list[str] = field(default_factory=list)
    facts: dict[str, int] = field(default_factory=dict)
    #: The last scene: each device's report card (device -> findings).
    cards: dict[str, list[Finding]] = field(default_factory=dict)
    #: Device name -> pattern: only the transcript lines matching it are kept for that device.
    focus: dict[str, str] = field(default_factory=dict)


class Stage:
    """The running server plus the devices, and a recorder of who said what."""

    def __init__(self, server: MailServer) -> None:
        self.server = server
        self.host = server.config.host
        self.names: dict[str, str] = {}  # session id -> device name
        self.lines: list[TraceLine] = []
        server.context.tracer.add_sink(self.lines.append)
        self._phone: Phone | None = None
        self._laptop: Laptop | None = None

    @property
    def phone(self) -> Phone:
        if self._phone is None:
            raise RuntimeError("the phone is not connected")
        return self._phone

    @property
    def laptop(self) -> Laptop:
        if self._laptop is None:
            raise RuntimeError("the laptop is not connected")
        return self._laptop

    def port(self, service: str) -> int:
        port = self.server.ports.as_dict().get(service)
        if port is None:
            raise RuntimeError(f"the demo needs the {service} listener")
        return port

    def desktop(self) -> Desktop:
        """A new POP3 connection, logged in (run it in a thread)."""
        return Desktop(self.host, self.port("pop3"), USER, PASSWORD)

    @property
    def root(self) -> Path:
        return self.server.config.maildir / USER

    def files(self) -> list[str]:
        """Every message file of the user, as ``folder/new|cur/name``."""
        out: list[str] = []
        if not self.root.is_dir():
            return out
        for folder in sorted([self.root, *self.root.glob(".*")]):
            if not (folder / "cur").is_dir():
                continue
            label = "INBOX" if folder == self.root else folder.name[1:]
            for sub in ("new", "cur"):
                for f in sorted((folder / sub).iterdir()):
                    out.append(f"{label}/{sub}/{_short(f.name)}")
        return out

    async def attach(self, name: str, connect: Callable[[], Awaitable[_T]]) -> _T:
        """Connect a device and remember which server session is it."""
        before = set(self.server.context.sessions.live)
        device = await connect()
        for sid in set(self.server.context.sessions.live) - before:
            self.names[sid] = name
        return device

    def transcripts_since(self, start: int) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for line in self.lines[start:]:
            name = self.names.get(line.session, line.protocol.upper())
            arrow = {"C": "C:", "S": "S:"}.get(line.direction, "**")
            text = line.text.replace("\r\n", "\n").replace("\n", "\n   ")
            out.setdefault(name, []).append(f"{arrow} {text}")
        return out

    def report_cards(self) -> dict[str, list[Finding]]:
        """Each device's report card, from all its sessions ("desktop (POP3, run 2)" is the
        desktop)."""
        card = self.server.context.report
        devices: dict[str, set[str]] = {}
        for sid, name in self.names.items():
            devices.setdefault(name.split(" ", 1)[0], set()).add(sid)
        if card is None:
            return {device: [] for device in devices}
        return {device: card.for_sessions(sids) for device, sids in devices.items()}

    async def smtp_send(self, messages: list[EmailMessage]) -> None:
        port = self.port("smtp")

        def send() -> None:
            with smtplib.SMTP(self.host, port) as smtp:
                for msg in messages:
                    smtp.send_message(msg, to_addrs=[f"{USER}@localhost"])

        await asyncio.to_thread(send)


def _focused(transcripts: dict[str, list[str]], focus: dict[str, str]) -> dict[str, list[str]]:
    return {
        name: [line for line in lines if name not in focus or re.search(focus[name], line)]
        for name, lines in transcripts.items()
    }


def _short(name: str) -> str:
    """``1795311463.M53P7Q1.host,S=483,W=483:2,S`` as ``1795311463…,S=483,W=483:2,S``.

    The timestamp and the size and flag fields are the parts a learner reads.
    """
    base, sep, info = name.partition(":2,")
    stamp, dot, rest = base.partition(".")
    sizes = rest[rest.find(",") :] if "," in rest else ""
    return f"{stamp}…{sizes}{sep}{info}" if dot else name


SceneFn = Callable[[Stage, Scene], Awaitable[None]]


async def scene_arrival(stage: Stage, scene: Scene) -> None:
    phone = stage.phone
    mark = phone.mark()
    await stage.smtp_send(sample_messages())
    await phone.wait_for(r"^\* 3 EXISTS", since=mark)
    scene.facts["delivered"] = 3
    scene.facts["phone_told_exists"] = int(bool(phone.lines_since(mark, r"^\* 3 EXISTS")))


async def scene_read_on_laptop(stage: Stage, scene: Scene) -> None:
    phone, laptop = stage.phone, stage.laptop
    mark = phone.mark()
    scene.facts["laptop_sees"] = await asyncio.to_thread(laptop.select)
    uid = (await asyncio.to_thread(laptop.uids))[0]
    await asyncio.to_thread(laptop.read, uid)
    scene.facts["phone_saw_seen"] = int(await phone.wait_for(r"FETCH.*\\Seen", since=mark))


async def scene_headers_then_part(stage: Stage, scene: Scene) -> None:
    laptop = stage.laptop
    uid = (await asyncio.to_thread(laptop.search, "SUBJECT", '"Quarterly report"'))[0]
    size = await asyncio.to_thread(laptop.fetch, uid, "(RFC822.SIZE BODYSTRUCTURE)")
    header = await asyncio.to_thread(
        laptop.fetch, uid, "(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"
    )
    attachment = await asyncio.to_thread(laptop.fetch, uid, "(BODY.PEEK[2])")
    whole = int(size.split(b"RFC822.SIZE ")[1].split()[0])
    scene.facts["message_bytes"] = whole
    scene.facts["header_bytes"] = len(header)
    scene.facts["attachment_bytes"] = len(attachment)


async def scene_folders_and_search(stage: Stage, scene: Scene) -> None:
    phone, laptop = stage.phone, stage.laptop
    mark = phone.mark()
    hits = await asyncio.to_thread(laptop.search, "FROM", "news@example.org")
    await asyncio.to_thread(laptop.create, "Later")
    await asyncio.to_thread(laptop.move, hits[0], "Later")
    await phone.wait_for(r"EXPUNGE", since=mark)
    scene.facts["search_hits"] = len(hits)
    scene.facts["inbox_after"] = len(await asyncio.to_thread(laptop.uids))
    scene.facts["phone_told_expunge"] = len(phone.lines_since(mark, r"EXPUNGE"))


async def scene_pop3_download_and_delete(stage: Stage, scene: Scene) -> None:
    phone = stage.phone
    mark = phone.mark()
    desktop = await stage.attach("desktop (POP3)", lambda: asyncio.to_thread(stage.desktop))
    count, _ = await asyncio.to_thread(desktop.stat)
    for num in range(1, count + 1):
        await asyncio.to_thread(desktop.retr, num)
        await asyncio.to_thread(desktop.dele, num)
    await asyncio.to_thread(desktop.quit)
    await phone.wait_for(r"EXPUNGE", count=count, since=mark)
    scene.facts["pop3_downloaded"] = count
    scene.facts["phone_told_expunge"] = len(phone.lines_since(mark, r"EXPUNGE"))
    scene.facts["inbox_after"] = await asyncio.to_thread(stage.laptop.select, "INBOX")
    scene.facts["later_kept"] = await asyncio.to_thread(stage.laptop.select, "Later")


async def scene_leave_on_server(stage: Stage, scene: Scene) -> None:
    phone = stage.phone
    mark = phone.mark()
    await stage.smtp_send([late_message()])
    await phone.wait_for(r"EXISTS", since=mark)
    seen: set[str] = set()
    runs = []
    for run in (1, 2):
        desktop = await stage.attach(
            f"desktop (POP3, run {run})", lambda: asyncio.to_thread(stage.desktop)
        )
        uidls = await asyncio.to_thread(desktop.uidls)
        new = [num for num, uidl in uidls.items() if uidl not in seen]
        for num in new:
            await asyncio.to_thread(desktop.retr, num)
        seen.update(uidls.values())
        await asyncio.to_thread(desktop.quit)
        runs.append(len(new))
    scene.facts["pop3_first_run"] = runs[0]
    scene.facts["pop3_second_run_new"] = runs[1]
    scene.facts["imap_still_sees"] = await asyncio.to_thread(stage.laptop.select, "INBOX")


async def scene_scanned_on_the_server(stage: Stage, scene: Scene) -> None:
    scanner = stage.server.context.scanner
    scene.facts["scanning"] = int(scanner.enabled)
    if not scanner.enabled:
        scene.lesson += " (Skipped: no engine; run the demo with --scan and spamd and clamd.)"
        return
    scene.focus["SMTP"] = r"^C: (MAIL|DATA)|^S: (554|250 2\.0\.0)|^\*\* scan:"
    phone = stage.phone
    mark = phone.mark()
    try:
        await stage.smtp_send([infected_message()])
        scene.facts["virus_refused"] = 0
    except smtplib.SMTPDataError as exc:
        scene.facts["virus_refused"] = int(exc.smtp_code == 554)
    await stage.smtp_send([spam_message()])
    laptop = stage.laptop
    scene.facts["laptop_junk"] = await asyncio.to_thread(laptop.select, "Junk")
    newest = (await asyncio.to_thread(laptop.uids))[-1]
    junk_flags = await asyncio.to_thread(laptop.fetch, newest, "(FLAGS)")
    scene.facts["junk_keyword"] = int(b"$Junk" in junk_flags)
    tablet = await stage.attach(
        "tablet (IMAP)",
        lambda: asyncio.to_thread(Laptop, stage.host, stage.port("imap"), USER, PASSWORD),
    )
    scene.facts["tablet_junk"] = await asyncio.to_thread(tablet.select, "Junk")
    await asyncio.to_thread(tablet.logout)
    await asyncio.to_thread(laptop.select, "INBOX")
    scene.facts["phone_told_exists"] = len(phone.lines_since(mark, r"EXISTS"))
    desktop = await stage.attach("desktop (POP3)", lambda: asyncio.to_thread(stage.desktop))
    scene.facts["pop3_sees_inbox"] = (await asyncio.to_thread(desktop.stat))[0]
    await asyncio.to_thread(desktop.quit)


SCENES: list[tuple[str, str, SceneFn]] = [
    (
        "1. Mail arrives",
        "SMTP delivers three messages into alice's Maildir (new/). The phone, in IMAP IDLE, is "
        "told at once: no polling.",
        scene_arrival,
    ),
    (
        "2. Read on the laptop, seen on the phone",
        "The laptop opens a message over IMAP. \\Seen is kept on the server: the file moves "
        "from new/ to cur/ and gains the S flag letter, and the phone is told.",
        scene_read_on_laptop,
    ),
    (
        "3. Headers first, then only the attachment",
        "IMAP fetches the structure and a few header fields, then just part 2 (the PDF): no "
        "need to download the whole message, unlike POP3.",
        scene_headers_then_part,
    ),
    (
        "4. Folders and search live on the server",
        "The laptop searches on the server and moves the newsletter to a new folder 'Later'. "
        "The phone sees it leave INBOX.",
        scene_folders_and_search,
    ),
    (
        "5. POP3 downloads and deletes",
        "The desktop speaks POP3: it sees INBOX only, downloads everything and deletes it at "
        "QUIT. The files vanish; the phone is told EXPUNGE; 'Later' is untouched.",
        scene_pop3_download_and_delete,
    ),
    (
        "6. Leave on server",
        "A POP3 client that never sends DELE leaves mail on the server; UIDL lets its second "
        "run skip what it already has, and IMAP still sees the message.",
        scene_leave_on_server,
    ),
    (
        "7. Scanned once, on the server",
        "An invoice carrying the EICAR test virus is refused at SMTP DATA (554), once, for "
        "every device; a GTUBE offer is scored by SpamAssassin and lands in Junk, which the "
        "laptop and the tablet both see, with $Junk. The phone's INBOX never hears of either. "
        "A POP3 desktop sees INBOX only and would have to scan what it downloads itself.",
        scene_scanned_on_the_server,
    ),
]


#: The closing scene, once every device has logged out.
CARD_SCENE = (
    "7. The report card",
    "While the scenes ran, the server noted each client's habits from its commands alone: what "
    "a client author would want to fix before it meets a real server. (The demo logs in without "
    "TLS on loopback, so every device gets cleartext-login.)",
)

SceneHook = Callable[[Scene], Awaitable[None]]


async def run_scenes(
    server: MailServer, before_scene: SceneHook | None = None, after_scene: SceneHook | None = None
) -> list[Scene]:
    """Run every scene on ``server`` (which must have SMTP, POP3 and IMAP listening)."""
    stage = Stage(server)
    imap = stage.port("imap")
    await server.store.ensure_user(USER)
    stage._phone = Phone(stage.host, imap, USER, PASSWORD)
    await stage.attach("phone (IMAP IDLE)", stage.phone.connect)
    laptop = await stage.attach(
        "laptop (IMAP)", lambda: asyncio.to_thread(Laptop, stage.host, imap, USER, PASSWORD)
    )
    stage._laptop = laptop
    scenes: list[Scene] = []
    try:
        for title, lesson, fn in SCENES:
            scene = Scene(title, lesson)
            if before_scene is not None:
                await before_scene(scene)
            start = len(stage.lines)
            scene.files_before = stage.files()
            await fn(stage, scene)
            await asyncio.sleep(0.05)  # let the last pushed lines reach the transcript
            scene.files_after = stage.files()
            scene.transcripts = _focused(stage.transcripts_since(start), scene.focus)
            scenes.append(scene)
            if after_scene is not None:
                await after_scene(scene)
    finally:
        await stage.phone.close()
        await asyncio.to_thread(laptop.logout)
    scene = Scene(*CARD_SCENE)
    if before_scene is not None:
        await before_scene(scene)
    await asyncio.sleep(0.05)  # the last sessions' close reaches the card
    scene.cards = stage.report_cards()
    scene.facts = {f"{device}_findings": len(found) for device, found in scene.cards.items()}
    scenes.append(scene)
    if after_scene is not None:
        await after_scene(scene)
    return scenes
