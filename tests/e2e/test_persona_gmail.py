"""The gmail persona's X-GM-EXT-1 end to end with imaplib: X-GM-MSGID / X-GM-THRID / X-GM-LABELS
FETCH items, STORE of labels (folders), X-GM-RAW / X-GM-MSGID / X-GM-LABELS search; and every
other persona refusing them."""

from __future__ import annotations

import asyncio
import imaplib
import re
from typing import Any

import pytest

from mailsrv.personas.catalog import GMAIL
from mailsrv.server import MailServer

GMAIL_FOLDERS = GMAIL.special_folders

pytestmark = pytest.mark.timeout(60)

LUNCH = (
    b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\nSubject: Lunch plans\r\n"
    b"Message-ID: <lunch@example.org>\r\n\r\nPizza on friday?\r\n"
)
REPLY = (
    b"From: Bob <bob@example.org>\r\nTo: ann@example.org\r\nSubject: Re: Lunch plans\r\n"
    b"Message-ID: <reply@example.org>\r\nIn-Reply-To: <lunch@example.org>\r\n"
    b"References: <lunch@example.org>\r\n\r\nSure, noon.\r\n"
)
REPORT = (
    b"From: Carol <carol@example.org>\r\nTo: ann@example.org\r\nSubject: Quarterly report\r\n"
    b"Message-ID: <report@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
    b'boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--B\r\n'
    b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="q3.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n"
)


async def seed(server: MailServer) -> None:
    await server.store.ensure_user("ann")
    await server.store.deliver("ann", LUNCH, flags=["\\Seen"])
    await server.store.deliver("ann", REPLY, flags=["\\Seen"])
    await server.store.deliver("ann", REPORT)


def items(data: list[Any]) -> dict[int, dict[str, str]]:
    """``{seq: {"X-GM-MSGID": "123", "X-GM-LABELS": "(\\Inbox)"}}`` from imaplib's answer."""
    out: dict[int, dict[str, str]] = {}
    for line in data:
        text = (line[0] if isinstance(line, tuple) else line).decode()
        seq = int(text.split()[0])
        found = re.findall(r"(X-GM-MSGID|X-GM-THRID|UID) (\d+)|(X-GM-LABELS) (\([^)]*\))", text)
        out[seq] = {a or c: b or d for a, b, c, d in found}
    return out


def search(m: imaplib.IMAP4, *criteria: str) -> list[int]:
    typ, data = m.search(None, *criteria)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


async def test_gmail_ids_labels_and_search(make_server: Any) -> None:
    async with make_server(services={"imap"}, persona="gmail") as server:
        await seed(server)

        def client() -> dict[str, Any]:
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            m.login("ann", "pw")
            out: dict[str, Any] = {"caps": m.capabilities}
            m.select("INBOX")
            out["ids"] = items(m.fetch("1:*", "(X-GM-MSGID X-GM-THRID X-GM-LABELS)")[1])
            out["store"] = m.store("1", "+X-GM-LABELS", '(Work "Muy Importante")')
            out["list"] = b"\n".join(m.list()[1])
            out["labels"] = items(m.fetch("1", "(X-GM-LABELS)")[1])
            out["raw"] = {
                q: search(m, "X-GM-RAW", f'"{q}"' if '"' not in q else q)
                for q in (
                    "from:ann",
                    "from:bob OR from:carol",
                    "-from:ann",
                    "subject:lunch",
                    "has:attachment",
                    "is:unread",
                    "is:read",
                    "label:muy-importante",
                    "in:inbox",
                    "pizza",
                    "before:2999/01/01",
                    "after:2999/01/01",
                    "larger:1K",
                )
            }
            msgid = out["ids"][3]["X-GM-MSGID"]
            out["by_msgid"] = search(m, "X-GM-MSGID", msgid)
            out["by_thread"] = search(m, "X-GM-THRID", out["ids"][1]["X-GM-MSGID"])
            out["by_label"] = search(m, "X-GM-LABELS", "Work")
            out["unstore"] = m.store("1", "-X-GM-LABELS", "(Work)")
            m.select("Work")
            out["work"] = m.select("Work")[1]
            m.select('"Muy Importante"')
            out["important"] = items(m.uid("FETCH", "1:*", "(X-GM-MSGID)")[1])
            m.select("INBOX")
            out["archive"] = m.store("1", "-X-GM-LABELS", "(\\Inbox)")
            out["after_archive"] = m.select("INBOX")[1]
            m.logout()
            return out

        out = await asyncio.to_thread(client)
        assert "X-GM-EXT-1" in out["caps"]
        ids = out["ids"]
        assert ids[1]["X-GM-LABELS"] == "(\\Inbox)"
        # The reply's thread is its root's message id; the three messages are distinct.
        assert ids[2]["X-GM-THRID"] == ids[1]["X-GM-MSGID"] == ids[1]["X-GM-THRID"]
        assert len({ids[n]["X-GM-MSGID"] for n in (1, 2, 3)}) == 3
        typ, data = out["store"]
        assert typ == "OK" and b'X-GM-LABELS (\\Inbox "Muy Importante" Work)' in data[0]
        assert b'"/" "Work"' in out["list"] and b'"/" "Muy Importante"' in out["list"]
        assert out["labels"][1]["X-GM-LABELS"] == '(\\Inbox "Muy Importante" Work)'
        raw = out["raw"]
        assert raw["from:ann"] == [1]
        assert raw["from:bob OR from:carol"] == [2, 3]
        assert raw["-from:ann"] == [2, 3]
        assert raw["subject:lunch"] == [1, 2]
        assert raw["has:attachment"] == [3]
        assert raw["is:unread"] == [3] and raw["is:read"] == [1, 2]
        assert raw["label:muy-importante"] == [1]
        assert raw["in:inbox"] == [1, 2, 3]
        assert raw["pizza"] == [1]
        assert raw["before:2999/01/01"] == [1, 2, 3] and raw["after:2999/01/01"] == []
        assert raw["larger:1K"] == []
        assert out["by_msgid"] == [3]
        assert out["by_thread"] == [1, 2]
        assert out["by_label"] == [1]
        assert out["unstore"][0] == "OK"
        assert out["work"] == [b"0"]  # the label's copy is gone from Work
        [important] = out["important"].values()
        assert important["X-GM-MSGID"] == ids[1]["X-GM-MSGID"]
        assert out["archive"][0] == "OK", out["archive"]
        assert out["after_archive"] == [b"2"]  # archived: no longer in INBOX


@pytest.mark.parametrize("name", ["mailsrv", "dovecot", "rev1"])
async def test_other_personas_refuse_gmail_extensions(make_server: Any, name: str) -> None:
    async with make_server(services={"imap"}, persona=name) as server:
        await seed(server)

        def client() -> list[str]:
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            m.login("ann", "pw")
            assert "X-GM-EXT-1" not in m.capabilities
            m.select("INBOX")
            answers = []
            for args in (
                ("FETCH", "1", "(X-GM-MSGID)"),
                ("STORE", "1", "+X-GM-LABELS", "(Work)"),
                ("SEARCH", "X-GM-RAW", '"from:ann"'),
            ):
                try:
                    typ, _ = m._simple_command(*args)
                except imaplib.IMAP4.error as exc:
                    typ = "BAD" if "BAD" in str(exc) or "Invalid" in str(exc) else str(exc)
                answers.append(typ)
            m.logout()
            return answers

        assert await asyncio.to_thread(client) == ["BAD", "BAD", "BAD"]


@pytest.mark.parametrize("store", ["maildir", "memory"])
async def test_all_mail_holds_every_message_but_spam(make_server: Any, store: str) -> None:
    import smtplib

    from mailsrv.store.memory import MemoryStore

    memory = MemoryStore(GMAIL_FOLDERS, all_mail=True) if store == "memory" else None
    async with make_server(store=memory, services={"imap", "smtp"}, persona="gmail") as server:
        await server.store.ensure_user("ann")

        def client() -> dict[str, Any]:
            with smtplib.SMTP("127.0.0.1", server.ports.smtp, timeout=10) as smtp:
                smtp.sendmail("bob@example.org", ["ann@localhost"], LUNCH)
            m = imaplib.IMAP4("127.0.0.1", server.ports.imap, timeout=10)
            m.login("ann", "pw")
            m.create("Work")
            m.append("Work", None, None, REPLY)
            m.append('"[Gmail]/Spam"', None, None, REPORT)
            out: dict[str, Any] = {"all": m.select('"[Gmail]/All Mail"')[1]}
            out["labels"] = items(m.fetch("1:*", "(X-GM-MSGID X-GM-LABELS)")[1])
            m.select("INBOX")
            out["inbox"] = items(m.fetch("1", "(X-GM-MSGID)")[1])
            m.logout()
            return out

        out = await asyncio.to_thread(client)
        assert out["all"] == [b"2"]  # the delivery and the APPEND to Work, not the spam
        assert [v["X-GM-LABELS"] for v in out["labels"].values()] == ["(\\Inbox)", "(Work)"]
        assert out["labels"][1]["X-GM-MSGID"] == out["inbox"][1]["X-GM-MSGID"]


async def test_imapclient_gmail_helpers(make_server: Any) -> None:
    """imapclient's own Gmail methods (labels, X-GM-RAW search, X-GM-MSGID) against the persona."""
    imapclient = pytest.importorskip("imapclient")
    async with make_server(services={"imap"}, persona="gmail") as server:
        await seed(server)

        def client() -> dict[str, Any]:
            c = imapclient.IMAPClient("127.0.0.1", port=server.ports.imap, ssl=False, timeout=10)
            c.login("ann", "pw")
            out: dict[str, Any] = {"all": c.find_special_folder(imapclient.imapclient.ALL)}
            c.select_folder("INBOX")
            uids = c.search("ALL")
            out["added"] = c.add_gmail_labels(uids[:1], ["Travel plans"])
            out["labels"] = c.get_gmail_labels(uids)
            out["search"] = c.gmail_search("has:attachment")
            out["thread"] = c.fetch(uids, ["X-GM-THRID"])
            out["removed"] = c.remove_gmail_labels(uids[:1], ["Travel plans"])
            out["after"] = c.get_gmail_labels(uids[:1])
            c.logout()
            return out

        out = await asyncio.to_thread(client)
        assert out["all"] == "[Gmail]/All Mail"
        labels = out["labels"]
        assert labels[1] == ["\\Inbox", "Travel plans"] and labels[3] == ["\\Inbox"]
        assert out["search"] == [3]
        threads = {u: d[b"X-GM-THRID"] for u, d in out["thread"].items()}
        assert threads[1] == threads[2] != threads[3]
        assert out["after"] == {1: ["\\Inbox"]}
