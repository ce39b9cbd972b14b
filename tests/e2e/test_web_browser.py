"""The console in real headless Chromium (Debian's ``chromium``) driven by Playwright.

One browser for the module; each test gets a fresh page and its own server. Screenshots of each
page go to test-artifacts/ (the README's come from there). Skipped cleanly when chromium or the
playwright package is missing.
"""

from __future__ import annotations

import asyncio
import imaplib
import importlib.util
import plistlib
import poplib
import re
import shutil
import smtplib
import subprocess
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if importlib.util.find_spec("playwright") is None or not Path(CHROMIUM).exists():
    pytest.skip("needs Debian's chromium and the playwright package", allow_module_level=True)

from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402

from mailsrv.store.base import FLAGGED  # noqa: E402

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Generous: a loaded CI machine can be slow; nothing here asserts on timing.
WAIT_MS = 15_000


def has_listener(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(
        viewport={"width": 1400, "height": 860}, accept_downloads=True
    )
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    await context.close()
    assert errors == [], f"script errors on the page: {errors}"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def report_mail() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Build Bot <ci@example.org>"
    msg["To"] = "ann@localhost"
    msg["Subject"] = "Nightly report"
    msg.set_content("All 214 tests passed.\n")
    msg.add_alternative(
        "<h2>Nightly report</h2><p>All <b>214</b> tests passed.</p>"
        '<img src="https://tracker.example.com/pixel.png" alt="tracker">'
        "<script>document.body.append(Object.assign("
        "document.createElement('div'), {id: 'pwned'}))</script>",
        subtype="html",
        cte="quoted-printable",
    )
    msg.add_attachment(
        b"name,result\nsmtp,ok\n", maintype="text", subtype="csv", filename="results.csv"
    )
    return msg.as_bytes(policy=policy.SMTP)


def send_smtp(port: int, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("ci@example.org", ["ann@localhost"], data)


async def test_mailbox_live_delivery_open_download_flag_delete(
    make_server: Any, page: Page, tmp_path: Path
) -> None:
    services = {"http", "smtp"} if has_listener("mailsrv.smtp.ingress") else {"http"}
    async with make_server(services=services) as server:
        store = server.store
        await store.ensure_user("ann")
        await store.deliver("ann", b"From: team@example.org\r\nSubject: Welcome\r\n\r\nhello\r\n")
        await page.goto(f"http://127.0.0.1:{server.ports.http}/")
        await expect(page.locator("#messages li[data-uid]")).to_have_count(1)
        await expect(page.locator("#live-status")).to_have_text("live")
        await page.evaluate("window.__sameDocument = true")

        # New mail shows up without a reload.
        if "smtp" in services:
            await asyncio.to_thread(send_smtp, server.ports.smtp, report_mail())
        else:
            await store.deliver("ann", report_mail())
        newest = page.locator("#messages li[data-uid]").first
        await expect(newest).to_contain_text("Nightly report")
        await expect(page.locator("#messages li[data-uid]")).to_have_count(2)
        assert await page.evaluate("window.__sameDocument") is True

        await newest.click()
        await expect(page.locator("#msg-subject")).to_have_text("Nightly report")
        frame_el = page.locator("#html-frame")
        assert await frame_el.get_attribute("sandbox") == ""
        frame = page.frame_locator("#html-frame")
        await expect(frame.locator("h2")).to_have_text("Nightly report")
        await expect(frame.locator("#pwned")).to_have_count(0)  # the script never ran
        await shot(page, "mailbox")

        await page.click(".tabs button[data-tab=text]")
        await expect(page.locator("#text-body")).to_have_text("All 214 tests passed.\n")
        await page.click(".tabs button[data-tab=raw]")
        await expect(page.locator("#raw-source")).to_contain_text("Subject: Nightly report")

        async with page.expect_download() as info:
            await page.click("#attachments a:has-text('results.csv')")
        download = await info.value
        assert download.suggested_filename == "results.csv"
        saved = tmp_path / "results.csv"
        await download.save_as(saved)
        assert saved.read_bytes().replace(b"\r\n", b"\n") == b"name,result\nsmtp,ok\n"

        await page.click("#btn-flag")
        await expect(page.locator("#btn-flag")).to_contain_text("Unflag")
        box = await store.open("ann")
        uid = int(await newest.get_attribute("data-uid") or 0)
        (info_now,) = [m for m in (await box.snapshot()).messages if m.uid == uid]
        assert FLAGGED in info_now.flags

        await page.click("#btn-delete")
        await expect(page.locator("#messages li[data-uid]")).to_have_count(1)
        assert uid not in [m.uid for m in (await box.snapshot()).messages]


async def test_a_refresh_after_the_server_stopped_shows_in_the_status_line(
    make_server: Any, page: Page
) -> None:
    async with make_server(services={"http"}) as server:
        await server.store.ensure_user("ann")
        await page.goto(f"http://127.0.0.1:{server.ports.http}/")
        await expect(page.locator("#live-status")).to_have_text("live")
    # The server is gone; a refresh nobody awaits (as a live event would start) fails quietly:
    # the status line says why, and the page fixture checks no script error reached the page.
    await page.evaluate("setTimeout(() => refreshAll(), 0)")
    await expect(page.locator("#live-status")).to_have_text(
        re.compile("mailsrv is not answering|reconnecting")
    )
    await page.evaluate("setTimeout(() => refreshAll(), 0)")
    await expect(page.locator("#live-status")).to_have_text("mailsrv is not answering")


async def test_sessions_page_streams_a_pop3_transcript(make_server: Any, page: Page) -> None:
    if not has_listener("mailsrv.pop3.listener"):
        pytest.skip("the POP3 listener is not there yet")
    async with make_server(services={"http", "pop3"}) as server:
        await server.store.ensure_user("ann")
        await server.store.deliver("ann", b"Subject: one\r\n\r\nfirst\r\n")
        await page.goto(f"http://127.0.0.1:{server.ports.http}/sessions")
        await expect(page.locator("#live-status")).to_have_text("live")
        client = await asyncio.to_thread(poplib.POP3, "127.0.0.1", server.ports.pop3, 10)
        try:
            await asyncio.to_thread(client.user, "ann")
            await asyncio.to_thread(client.pass_, "secret-pw")
            session = page.locator("#open-sessions li[data-session^=pop3-]")
            await expect(session).to_have_count(1)
            await expect(session).to_contain_text("user ann")
            transcript = page.locator("#transcript")
            await expect(transcript).to_contain_text("USER ann")
            await expect(transcript).to_contain_text("PASS ***")
            assert "secret-pw" not in await transcript.inner_text()
            # Each new command streams in as it happens.
            await asyncio.to_thread(client.stat)
            await expect(transcript).to_contain_text("STAT")
            await asyncio.to_thread(client.list)
            await expect(transcript.locator(".ln.C").last).to_contain_text("LIST")
            await shot(page, "sessions")
        finally:
            await asyncio.to_thread(client.quit)
        await expect(page.locator("#closed-sessions li[data-session^=pop3-]")).to_have_count(1)
        await expect(page.locator("#transcript")).to_contain_text("QUIT")


async def test_compare_page_shows_pop3_dele_then_quit_removing_the_file(
    make_server: Any, page: Page
) -> None:
    if not has_listener("mailsrv.pop3.listener"):
        pytest.skip("the POP3 listener is not there yet")
    async with make_server(services={"http", "pop3"}) as server:  # the default store: a Maildir
        store = server.store
        await store.ensure_user("ann")
        for n in (1, 2, 3):
            await store.deliver("ann", f"Subject: lesson {n}\r\n\r\nbody {n}\r\n".encode())
        await page.goto(f"http://127.0.0.1:{server.ports.http}/compare#user=ann")
        files = page.locator("#maildir .files li[data-name]:not(.gone)")
        await expect(files).to_have_count(3)

        client = await asyncio.to_thread(poplib.POP3, "127.0.0.1", server.ports.pop3, 10)
        try:
            await asyncio.to_thread(client.user, "ann")
            await asyncio.to_thread(client.pass_, "pw")
            await asyncio.to_thread(client.retr, 1)
            await asyncio.to_thread(client.dele, 1)
            card = page.locator("#pop3-sessions .mini-session")
            await expect(card).to_contain_text("DELE 1")
            # RETR set \Seen: the file moved to cur/ with the S letter; DELE deleted nothing.
            await expect(page.locator("#maildir [data-dir=cur] .letters")).to_have_text([":2,S"])
            await expect(files).to_have_count(3)
            await expect(page.locator("#timeline tr[data-kind=fetched]")).to_have_count(1)
            await shot(page, "compare-before-quit")
        finally:
            await asyncio.to_thread(client.quit)
        # QUIT is when POP3 deletes: the file goes, and the timeline says who did it.
        await expect(files).to_have_count(2)
        await expect(page.locator("#maildir .files li.gone")).to_have_count(1)
        expunged = page.locator("#timeline tr[data-kind=expunged]")
        await expect(expunged).to_have_count(1)
        await expect(expunged).to_contain_text("deleted by POP3 at QUIT")
        assert await expunged.get_attribute("data-protocol") == "pop3"
        assert len((await (await store.open("ann")).snapshot()).messages) == 2
        await shot(page, "compare")


async def test_compare_page_shows_imap_flags_and_expunge(make_server: Any, page: Page) -> None:
    if not has_listener("mailsrv.imap.listener"):
        pytest.skip("the IMAP listener is not there yet")
    async with make_server(services={"http", "imap"}) as server:
        store = server.store
        await store.ensure_user("ann")
        for n in (1, 2):
            await store.deliver("ann", f"Subject: kept {n}\r\n\r\nbody {n}\r\n".encode())
        await page.goto(f"http://127.0.0.1:{server.ports.http}/compare#user=ann")
        files = page.locator("#maildir .files li[data-name]:not(.gone)")
        await expect(files).to_have_count(2)
        imap = await asyncio.to_thread(imaplib.IMAP4, "127.0.0.1", server.ports.imap, 10)
        try:
            await asyncio.to_thread(imap.login, "ann", "pw")
            await asyncio.to_thread(imap.select, "INBOX")
            await asyncio.to_thread(imap.uid, "STORE", "1", "+FLAGS", "(\\Flagged \\Deleted)")
            await expect(page.locator("#imap-sessions .mini-session")).to_contain_text("STORE")
            # \Deleted is only the T letter in the file name until EXPUNGE.
            await expect(page.locator("#maildir .letters", has_text="T")).to_have_count(1)
            await expect(files).to_have_count(2)
            await asyncio.to_thread(imap.expunge)
            await expect(files).to_have_count(1)
            expunged = page.locator("#timeline tr[data-kind=expunged]")
            await expect(expunged).to_contain_text("removed by IMAP EXPUNGE")
            await shot(page, "compare-imap")
        finally:
            await asyncio.to_thread(imap.logout)
        assert [m.uid for m in (await (await store.open("ann")).snapshot()).messages] == [2]


async def test_sessions_page_shows_the_report_card_beside_the_session(
    make_server: Any, page: Page
) -> None:
    if not has_listener("mailsrv.imap.listener"):
        pytest.skip("the IMAP listener is not there yet")
    async with make_server(services={"http", "imap"}) as server:
        await server.store.ensure_user("ann")
        await server.store.deliver("ann", b"Subject: one\r\n\r\nfirst\r\n")
        await page.goto(f"http://127.0.0.1:{server.ports.http}/sessions")
        await expect(page.locator("#live-status")).to_have_text("live")
        imap = await asyncio.to_thread(imaplib.IMAP4, "127.0.0.1", server.ports.imap, 10)
        try:
            await asyncio.to_thread(imap.login, "ann", "pw")
            card = page.locator("#report-card")
            login = card.locator(".finding.error[data-code=cleartext-login]")
            await expect(login).to_contain_text("LOGIN ann ***")
            await asyncio.to_thread(imap.select, "INBOX")
            for _ in range(3):
                await asyncio.to_thread(imap.noop)
            await asyncio.to_thread(imap.fetch, "1", "(BODY[])")
            polling = card.locator(".finding.warning[data-code=poll-instead-of-idle]")
            await expect(polling.locator("li")).to_have_count(3)
            await expect(card.locator("[data-code=fetch-sets-seen]")).to_contain_text("BODY.PEEK")
            await expect(card.locator("[data-code=no-uid-commands]")).to_be_visible()
            await shot(page, "report-card")
        finally:
            await asyncio.to_thread(imap.logout)
        # A second session that behaves gets its own, empty, card.
        good = await asyncio.to_thread(imaplib.IMAP4, "127.0.0.1", server.ports.imap, 10)
        try:
            # The first session may still be listed (closed) until the page drops it.
            second = "#open-sessions li[data-session^=imap-]:not([data-session=imap-1])"
            await page.locator(second).click()
            await expect(page.locator("#transcript-title")).not_to_contain_text("imap-1")
            await expect(page.locator("#report-card")).to_contain_text("No habits to report")
        finally:
            await asyncio.to_thread(good.logout)


async def test_a_page_under_a_rebinding_name_cannot_read_the_api(make_server: Any) -> None:
    """Chromium resolves ``127.0.0.1.evil.example`` to 127.0.0.1, as a rebinding attacker's DNS
    would: the console must refuse the page and every API call made from it."""
    rebind = "127.0.0.1.evil.example"
    async with make_server(services={"http"}) as server, async_playwright() as pw:
        await server.store.ensure_user("ann")
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {rebind} 127.0.0.1"],
            headless=True,
        )
        try:
            page = await browser.new_page()
            url = f"http://{rebind}:{server.ports.http}/"
            response = await page.goto(url)
            assert response is not None and response.status == 403
            statuses = await page.evaluate(
                """async () => [
                    (await fetch('/api/v1/users')).status,
                    (await fetch('/api/v1/users', {method: 'POST',
                        headers: {'Content-Type': 'application/json'},
                        body: JSON.stringify({name: 'rebound', password: 'x'})})).status,
                ]"""
            )
            assert statuses == [403, 403]
            assert not await server.store.user_exists("rebound")
        finally:
            await browser.close()


async def test_connect_a_client_page_profile_download_and_qr_code(
    make_server: Any, page: Page, tmp_path: Path
) -> None:
    """From the console's menu to the client page; the profile link downloads a profile that
    plistlib reads, and a QR reader (zbar) reads the profile's address off the rendered code."""
    services = {"http", "imap", "imaps", "pop3", "pop3s", "submission", "smtps"}
    async with make_server(services=services) as server:
        ports = server.ports
        await server.store.ensure_user("ann")
        await page.goto(f"http://localhost:{ports.http}/sessions")
        await page.click("nav a[href='/clients']")
        await expect(page).to_have_title("mailsrv · connect a client")
        await expect(page.locator("#client-host")).to_have_text("localhost")
        await expect(page.locator("#client-address")).to_have_value("ann@localhost")
        for card in ("thunderbird", "outlook", "apple", "android", "mutt", "mbsync", "curl"):
            await expect(page.locator(f"#{card}")).to_be_visible()
        await expect(page.locator("#servers")).to_contain_text(str(ports.pop3s))
        await page.fill("#client-address", "bea@localhost")
        await page.click("form.toolbar button[type=submit]")
        await expect(page.locator("#mutt-snippet")).to_contain_text(
            f'set folder = "imaps://bea@localhost:{ports.imaps}/"'
        )
        await expect(page.locator("#mbsync-snippet")).to_contain_text(f"Port {ports.imaps}")
        profile_url = (
            f"http://localhost:{ports.http}/clients/apple.mobileconfig?email=bea%40localhost"
        )
        await expect(page.locator("#profile-link")).to_have_attribute("href", profile_url)
        await shot(page, "clients")

        async with page.expect_download() as info:
            await page.click("#ca-pem")
        ca = await (await info.value).path()
        assert Path(ca).read_text() == server.ca_file.read_text()
        async with page.expect_download() as info:
            await page.click("#profile-link")
        download = await info.value
        assert download.suggested_filename == "mailsrv-bea.mobileconfig"
        profile = plistlib.loads(Path(await download.path()).read_bytes())
        kinds = {p["PayloadType"] for p in profile["PayloadContent"]}
        assert kinds == {"com.apple.mail.managed", "com.apple.security.root"}

        if shutil.which("zbarimg") is None:
            pytest.skip("the QR check needs zbarimg (Debian's zbar-tools)")
        png = tmp_path / "qr.png"
        await page.locator("#profile-qr").screenshot(path=str(png))
        read = await asyncio.to_thread(
            subprocess.run,
            ["zbarimg", "--quiet", "--raw", str(png)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert read.stdout.strip() == profile_url, read.stderr


async def test_mailbox_shows_what_scanning_found(make_server: Any, page: Page) -> None:
    """The verdict fields scanning wrote (``X-Spam-*``, ``X-Virus-Status``) as the console shows
    them: a Junk badge in the list, the score and each rule with its description."""
    from mailsrv.scan.scan_fields import scan_headers
    from mailsrv.scan.verdict import Rule, ScanResult, SpamCheck, VirusCheck

    gtube = Rule("GTUBE", 1000.0, "BODY: Generic Test for Unsolicited Bulk Email")
    result = ScanResult(SpamCheck("yes", 1000.0, 5.0, (gtube,)), VirusCheck("clean"))
    async with make_server(services={"http"}) as server:
        await server.store.ensure_user("ann")
        data = scan_headers(result) + b"From: spam@example.net\r\nSubject: Offer\r\n\r\nbuy\r\n"
        await server.store.deliver("ann", data)
        await page.goto(f"http://127.0.0.1:{server.ports.http}/")
        item = page.locator("#messages li[data-uid]").first
        await expect(item.locator(".badge.junk")).to_have_text("Junk")
        await item.click()
        scan = page.locator("#msg-scan")
        await expect(scan).to_contain_text("Spam score 1000.0 (junk at 5.0)")
        await expect(scan).to_contain_text("No virus found")
        await expect(scan.locator(".rules tr")).to_have_count(1)
        await expect(scan.locator(".rules")).to_contain_text(gtube.description)
        await shot(page, "scan")
