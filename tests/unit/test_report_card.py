"""The report card's observers, fed transcript lines directly (no server, no socket): each habit
is noted from the lines that show it, and a well-behaved session gets no findings."""

from __future__ import annotations

import pytest

from mailsrv.report.card import MAX_SESSIONS, ReportCard
from mailsrv.report.findings import HABITS, Finding
from mailsrv.trace import TraceLine

CAPS = "* OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS STARTTLS] mailsrv ready."
NO_IDLE = "* OK [CAPABILITY IMAP4rev1 UIDPLUS] ready."


class Talk:
    """Feeds one session's lines to a card, as the tracer would."""

    def __init__(self, card: ReportCard, session: str, tls: set[str]) -> None:
        self.card, self.session, self.tls = card, session, tls
        self.protocol = session.split("-")[0]
        self.user: str | None = None

    def __call__(self, direction: str, text: str) -> Talk:
        line = TraceLine(0.0, self.session, self.protocol, self.user, direction, text)
        self.card.record(line)
        return self

    def login(self, user: str) -> Talk:
        """The lines from now on carry the user, as the tracer's do after a login."""
        self.user = user
        return self("*", f"logged in as {user}")

    def starttls(self) -> Talk:
        self.tls.add(self.session)
        return self


@pytest.fixture
def card() -> tuple[ReportCard, set[str]]:
    on_tls: set[str] = set()
    return ReportCard(lambda sid: sid in on_tls), on_tls


def talk(card: tuple[ReportCard, set[str]], session: str) -> Talk:
    return Talk(card[0], session, card[1])


def codes(findings: list[Finding] | None) -> list[str]:
    assert findings is not None
    return [f.code for f in findings]


def imap_selected(t: Talk, command: str = "SELECT", user: str = "alice") -> Talk:
    t.starttls()("S", CAPS)("C", "a1 LOGIN alice ***").login(user)("S", "a1 OK Logged in")
    return t("C", f"a2 {command} INBOX")("S", "* 3 EXISTS\na2 OK [READ-WRITE] done")


def test_a_well_behaved_imap_client_gets_nothing(card: tuple[ReportCard, set[str]]) -> None:
    t = talk(card, "imap-1")("S", CAPS)("C", "a0 STARTTLS")("S", "a0 OK Begin TLS").starttls()
    t("C", "a1 LOGIN alice ***").login("alice")("S", "a1 OK Logged in")
    t("C", "a2 SELECT INBOX")("S", "a2 OK [READ-WRITE] done")
    t("C", "a3 UID FETCH 1:* (FLAGS)")("C", "a4 UID FETCH 7 (BODY.PEEK[])")
    t("C", "a5 UID STORE 7 +FLAGS (\\Seen)")("C", "a6 IDLE")("C", "DONE")("C", "a7 NOOP")
    t("C", "a8 NOOP")("C", "a9 NOOP")("C", "b1 UID FETCH 8:* (BODY.PEEK[])")
    t("C", "b2 LOGOUT")("*", "close")
    assert card[0].for_session("imap-1") == [] and card[0].for_user("alice") == []


def test_cleartext_login_on_each_protocol(card: tuple[ReportCard, set[str]]) -> None:
    talk(card, "imap-1")("C", "a1 LOGIN alice ***").login("alice")
    talk(card, "imap-2")("C", "a1 AUTHENTICATE PLAIN ***").login("alice")
    talk(card, "imap-3")("C", "a1 AUTHENTICATE CRAM-MD5").login("alice")  # no password sent
    talk(card, "pop3-4")("C", "USER alice")("C", "PASS ***").login("alice")
    talk(card, "pop3-5")("C", "APOP alice 0123abcd").login("alice")
    talk(card, "smtp-6")("C", "EHLO x")("C", "AUTH LOGIN ***").login("alice")
    talk(card, "pop3-7").starttls()("C", "USER alice")("C", "PASS ***").login("alice")
    [finding] = card[0].for_user("alice")
    assert finding.code == "cleartext-login" and finding.severity == "error"
    assert finding.message == HABITS["cleartext-login"].message
    assert finding.evidence == (
        "imap-1 C: a1 LOGIN alice ***",
        "imap-2 C: a1 AUTHENTICATE PLAIN ***",
        "pop3-4 C: USER alice",
        "pop3-4 C: PASS ***",
        "smtp-6 C: AUTH LOGIN ***",
    )
    assert codes(card[0].for_session("imap-3")) == codes(card[0].for_session("pop3-7")) == []


def test_poll_instead_of_idle_needs_idle_on_offer_and_three_polls(
    card: tuple[ReportCard, set[str]],
) -> None:
    t = imap_selected(talk(card, "imap-1"))
    t("C", "a3 NOOP")("C", "a4 NOOP")
    assert "poll-instead-of-idle" not in codes(card[0].for_session("imap-1"))
    t("C", "a5 NOOP")
    [poll] = [f for f in card[0].for_user("alice") if f.code == "poll-instead-of-idle"]
    assert poll.evidence == ("imap-1 C: a3 NOOP", "imap-1 C: a4 NOOP", "imap-1 C: a5 NOOP")
    # STATUS of one mailbox again and again is polling too; of three mailboxes once each is not.
    s = talk(card, "imap-2")("S", CAPS)
    for n, box in enumerate(["INBOX", "Sent", "Junk", "INBOX", '"INBOX"']):
        s("C", f"s{n} STATUS {box} (MESSAGES)")
    assert "poll-instead-of-idle" in codes(card[0].for_session("imap-2"))
    quiet = talk(card, "imap-3")("S", CAPS)
    for n, box in enumerate(["INBOX", "Sent", "Junk"]):
        quiet("C", f"s{n} STATUS {box} (MESSAGES)")
    assert codes(card[0].for_session("imap-3")) == []
    # Without IDLE on offer, polling is all a client can do.
    n = talk(card, "imap-4")("S", NO_IDLE)("C", "a NOOP")("C", "b NOOP")("C", "c NOOP")
    assert codes(card[0].for_session(n.session)) == []


def test_no_uid_commands(card: tuple[ReportCard, set[str]]) -> None:
    t = imap_selected(talk(card, "imap-1"), "EXAMINE")
    t("C", "a3 FETCH 1:* (FLAGS)")("C", "a4 STORE 2 +FLAGS (\\Deleted)")("C", "a5 COPY 1 Trash")
    t("C", "a6 MOVE 1 Trash")("C", "a7 UID FETCH 1:* (FLAGS)")("C", "a8 SEARCH ALL")
    [finding] = card[0].for_session("imap-1") or []
    assert finding.code == "no-uid-commands" and finding.count == 4
    assert finding.evidence[-1] == "imap-1 C: a6 MOVE 1 Trash"


def test_fetch_sets_seen_only_read_write_and_not_peek(card: tuple[ReportCard, set[str]]) -> None:
    t = imap_selected(talk(card, "imap-1"))
    t("C", "a3 UID FETCH 5 (BODY.PEEK[] RFC822.SIZE BINARY.PEEK[1])")
    t("C", "a4 UID FETCH 5 (RFC822.HEADER)")
    assert codes(card[0].for_session("imap-1")) == []
    t("C", "a5 UID FETCH 5 (BODY[HEADER.FIELDS (SUBJECT)])")("C", "a6 UID FETCH 6 RFC822")
    [seen] = card[0].for_session("imap-1") or []
    assert seen.code == "fetch-sets-seen" and seen.count == 2
    ro = imap_selected(talk(card, "imap-2"), "EXAMINE", user="bob")
    ro("C", "a3 UID FETCH 5 (BODY[])")
    assert codes(card[0].for_session("imap-2")) == []


def test_a_failed_select_selects_nothing(card: tuple[ReportCard, set[str]]) -> None:
    t = talk(card, "imap-1")("S", CAPS)("C", "a1 LOGIN alice ***").login("alice")
    t("C", "a2 SELECT Nope")("S", "a2 NO [NONEXISTENT] no such mailbox")
    t("C", "a3 UID FETCH 1 (BODY[])")
    assert codes(card[0].for_session("imap-1")) == ["cleartext-login"]


def test_refetch_all_across_sessions_of_one_user(card: tuple[ReportCard, set[str]]) -> None:
    first = imap_selected(talk(card, "imap-1"), "EXAMINE")
    first("C", "a3 UID FETCH 1:* (UID BODY.PEEK[])")
    second = imap_selected(talk(card, "imap-2"), "EXAMINE")
    second("C", "a3 UID FETCH 4:* (UID BODY.PEEK[])")  # only what is new: fine
    assert "refetch-all" not in codes(card[0].for_user("alice"))
    second("C", "a4 UID FETCH 1:* (BODY.PEEK[])")
    [again] = [f for f in card[0].for_user("alice") if f.code == "refetch-all"]
    assert again.evidence == (
        "imap-1 C: a3 UID FETCH 1:* (UID BODY.PEEK[])",
        "imap-2 C: a4 UID FETCH 1:* (BODY.PEEK[])",
    )
    other = imap_selected(talk(card, "imap-3"), "EXAMINE", user="bob")
    other("C", "a3 UID FETCH 1:* (BODY.PEEK[])")  # another user's download is no repeat
    assert "refetch-all" not in codes(card[0].for_user("bob"))


def test_pop3_redownload_and_the_good_leave_on_server(card: tuple[ReportCard, set[str]]) -> None:
    t = talk(card, "pop3-1").starttls()("C", "USER alice")("C", "PASS ***").login("alice")
    t("C", "RETR 1")("C", "RETR 2")("C", "QUIT")
    [finding] = card[0].for_session("pop3-1") or []
    assert finding.code == "pop3-redownload"
    assert finding.evidence == ("pop3-1 C: RETR 1", "pop3-1 C: RETR 2", "pop3-1 C: QUIT")
    good = talk(card, "pop3-2").starttls()("C", "USER bob")("C", "PASS ***").login("bob")
    good("C", "UIDL")("C", "RETR 2")("C", "QUIT")("*", "closed")
    deleting = talk(card, "pop3-3").starttls()("C", "USER carol")("C", "PASS ***").login("carol")
    deleting("C", "RETR 1")("C", "DELE 1")("C", "QUIT")("*", "closed")
    assert card[0].for_user("bob") == [] and card[0].for_user("carol") == []


def test_pop3_dele_without_quit_and_no_logout(card: tuple[ReportCard, set[str]]) -> None:
    t = talk(card, "pop3-1").starttls()("C", "USER alice")("C", "PASS ***").login("alice")
    t("C", "DELE 1")("*", "closed")
    assert codes(card[0].for_session("pop3-1")) == ["pop3-dele-without-quit"]
    i = imap_selected(talk(card, "imap-2"), user="bob")("*", "close")
    assert codes(card[0].for_session(i.session)) == ["no-logout"]
    # Closed before logging in: nothing to say about a session that never started.
    talk(card, "imap-3")("S", CAPS)("*", "close")
    assert codes(card[0].for_session("imap-3")) == []


def test_smtp_helo(card: tuple[ReportCard, set[str]]) -> None:
    talk(card, "smtp-1")("C", "HELO client.example")("C", "MAIL FROM:<a@b>")
    talk(card, "smtp-2")("C", "EHLO client.example")("C", "QUIT")
    assert codes(card[0].for_session("smtp-1")) == ["smtp-helo"]
    assert codes(card[0].for_session("smtp-2")) == []


def test_severity_orders_the_user_card_and_sessions_are_bounded(
    card: tuple[ReportCard, set[str]],
) -> None:
    t = imap_selected(talk(card, "imap-1"))
    t("C", "a3 FETCH 1 (BODY[])")("C", "a4 NOOP")("C", "a5 NOOP")("C", "a6 NOOP")
    severities = [f.severity for f in card[0].for_user("alice")]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    assert card[0].for_session("imap-1") is not None
    for n in range(MAX_SESSIONS):
        talk(card, f"smtp-{n + 10}")("C", "EHLO x")
    assert card[0].for_session("imap-1") is None
    card[0].clear()
    assert card[0].for_user("alice") == []
