"""Drawing the demo on a terminal with rich: transcripts side by side, files before and after."""

from __future__ import annotations

from rich.columns import Columns
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mailsrv.demo.scenes import Scene

#: Lines of one device's transcript shown per scene (the rest is summarized).
MAX_TRANSCRIPT_LINES = 14


def _transcript(name: str, lines: list[str]) -> Panel:
    text = Text()
    shown = lines if len(lines) <= MAX_TRANSCRIPT_LINES else lines[: MAX_TRANSCRIPT_LINES - 1]
    for line in shown:
        style = "green" if line.startswith("C:") else "cyan" if line.startswith("S:") else "dim"
        text.append(line[:110] + "\n", style=style)
    if len(shown) < len(lines):
        text.append(f"… {len(lines) - len(shown)} more lines\n", style="dim")
    return Panel(text, title=name, border_style="blue", width=60)


def _files(scene: Scene) -> Table:
    table = Table(title="Maildir files (alice)", expand=False, show_lines=False)
    table.add_column("before", style="yellow")
    table.add_column("after", style="magenta")
    before, after = scene.files_before, scene.files_after
    for i in range(max(len(before), len(after), 1)):
        b = before[i] if i < len(before) else ""
        a = after[i] if i < len(after) else ""
        table.add_row(b, a)
    return table


_SEVERITY_STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _card(device: str, scene: Scene) -> Panel:
    text = Text()
    for f in scene.cards[device]:
        text.append(f"{f.severity:<8}", style=_SEVERITY_STYLES.get(f.severity, ""))
        text.append(f"{f.code}\n", style="bold")
        text.append(f"  {f.message}\n")
        for line in f.evidence[:2]:
            text.append(f"  {line[:100]}\n", style="dim")
    if not scene.cards[device]:
        text.append("no habits to report\n", style="green")
    return Panel(text, title=device, border_style="blue", width=60)


def render_scene(console: Console, scene: Scene) -> None:
    console.rule(f"[bold]{scene.title}")
    console.print(Text(scene.lesson, style="italic"))
    if scene.cards:
        console.print(Columns([_card(d, scene) for d in scene.cards], equal=False, expand=False))
        return
    panels = [_transcript(name, lines) for name, lines in scene.transcripts.items()]
    console.print(Columns(panels, equal=False, expand=False))
    facts = ", ".join(f"{k} = {v}" for k, v in scene.facts.items())
    console.print(Group(_files(scene), Text(f"facts: {facts}", style="bold")))


def render_summary(console: Console, scenes: list[Scene]) -> None:
    """The POP3-versus-IMAP table, each row backed by what the scenes just showed."""
    facts: dict[str, int] = {}
    for scene in scenes:
        for key, value in scene.facts.items():
            facts[f"{scene.title[:1]}.{key}"] = value
    table = Table(title="POP3 versus IMAP: what just happened", show_lines=True)
    table.add_column("")
    table.add_column("POP3", style="yellow")
    table.add_column("IMAP", style="cyan")
    table.add_row(
        "where mail lives",
        f"downloaded {facts.get('5.pop3_downloaded', 0)} messages and deleted them "
        f"(INBOX left with {facts.get('5.inbox_after', 0)})",
        f"stays on the server ('Later' still holds {facts.get('5.later_kept', 0)})",
    )
    table.add_row(
        "several devices",
        "each device downloads its own copy; nobody is told",
        f"the phone was told of every change (EXISTS, FETCH FLAGS, "
        f"{facts.get('5.phone_told_expunge', 0)} EXPUNGE at scene 5)",
    )
    table.add_row(
        "read / flagged",
        "kept on the device",
        f"\\Seen kept on the server: flag letter S in the file name "
        f"(phone saw it: {bool(facts.get('2.phone_saw_seen'))})",
    )
    table.add_row("folders", "INBOX only", "created 'Later' and moved a message into it")
    table.add_row(
        "fetching",
        "whole messages",
        f"{facts.get('3.header_bytes', 0)} header bytes, then the "
        f"{facts.get('3.attachment_bytes', 0)}-byte attachment part of a "
        f"{facts.get('3.message_bytes', 0)}-byte message",
    )
    table.add_row(
        "search", "on the device", f"SEARCH on the server ({facts.get('4.search_hits', 0)} hit)"
    )
    table.add_row("new mail", "the client polls", "the server pushes while the client IDLEs")
    table.add_row(
        "leave on server",
        f"UIDL: run 1 fetched {facts.get('6.pop3_first_run', 0)}, run 2 fetched "
        f"{facts.get('6.pop3_second_run_new', 0)} new",
        f"still sees {facts.get('6.imap_still_sees', 0)} message in INBOX",
    )
    if facts.get("7.scanning"):
        virus = "the virus refused at DATA" if facts.get("7.virus_refused") else "no virus found"
        devices = sum(1 for key in ("7.laptop_junk", "7.tablet_junk") if facts.get(key))
        table.add_row(
            "spam and viruses",
            "each device scans what it downloads (INBOX only)",
            f"scanned once on the server: {virus}, the spam in Junk on {devices} IMAP devices",
        )
    table.add_row("ports", "110, 995 (TLS); STLS", "143, 993 (TLS); STARTTLS")
    console.print(table)
