"""The scanning protocols and the verdict fields, sans-I/O: spamc requests and replies, clamd's
INSTREAM framing and answers, the engines' addresses, and ``X-Spam-*`` / ``X-Virus-Status``
written and read back."""

from __future__ import annotations

import struct

import pytest

from mailsrv.scan import clamd, spamc
from mailsrv.scan.endpoints import Endpoint, EngineError, parse_endpoint
from mailsrv.scan.scan_fields import read_scan, scan_headers, strip_scan_fields
from mailsrv.scan.settings import ScanSettings, settings_problem
from mailsrv.scan.verdict import Rule, ScanResult, SpamCheck, VirusCheck

#: spamd 4.0's answer to REPORT for a GTUBE message (the table as SpamAssassin prints it).
GTUBE_REPORT = """Spam detection software, running on the system "vm",
has identified this incoming email as possible spam.

Content preview:  XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X

Content analysis details:   (1003.4 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
-0.0 NO_RECEIVED            Informational: message has no Received headers
 2.7 MISSING_DATE           Missing Date: header
1000 GTUBE                  BODY: Generic Test for Unsolicited Bulk Email
 0.1 LONG_ONE               A description long enough that SpamAssassin wraps
                            it onto a second line
 0.0 TVD_SPACE_RATIO        No description available.


"""


def spamd_reply(report: str = GTUBE_REPORT, spam: str = "True ; 1003.4 / 5.0") -> bytes:
    body = report.encode()
    head = f"SPAMD/1.1 0 EX_OK\r\nContent-length: {len(body)}\r\nSpam: {spam}\r\n\r\n"
    return head.encode() + body


# -- endpoints --------------------------------------------------------------------------------


def test_endpoints_tcp_and_unix() -> None:
    assert parse_endpoint("spamc://127.0.0.1:783", "spamc") == Endpoint(
        "spamc://127.0.0.1:783", host="127.0.0.1", port=783
    )
    assert parse_endpoint("clamd://[::1]:3310", "clamd").host == "::1"
    assert parse_endpoint("unix:/run/clamav/clamd.ctl", "clamd").path == "/run/clamav/clamd.ctl"


@pytest.mark.parametrize(
    "value",
    [
        "clamd://127.0.0.1:3310",  # the other engine's scheme
        "spamc://127.0.0.1",  # no port
        "spamc://127.0.0.1:99999",
        "spamc://:783",
        "spamc://127.0.0.1:783/path",
        "unix:relative/path",
        "127.0.0.1:783",
    ],
)
def test_bad_endpoints_say_what_is_expected(value: str) -> None:
    with pytest.raises(ValueError, match="spamc://HOST:PORT"):
        parse_endpoint(value, "spamc")


def test_settings_problems() -> None:
    assert settings_problem(ScanSettings()) is None
    assert settings_problem(ScanSettings(spam="http://x")) is not None
    assert settings_problem(ScanSettings(timeout=0))[0] == "timeout"  # type: ignore[index]
    assert settings_problem(ScanSettings(concurrency=0))[0] == "concurrency"  # type: ignore[index]
    assert not ScanSettings().enabled and ScanSettings(virus="unix:/x").enabled


# -- spamc ------------------------------------------------------------------------------------


def test_report_request_names_the_length() -> None:
    assert spamc.report_request(b"abc") == b"REPORT SPAMC/1.5\r\nContent-length: 3\r\n\r\n"
    assert spamc.ping_request() == b"PING SPAMC/1.5\r\n\r\n"


def test_report_reply_gives_score_and_rules_with_descriptions() -> None:
    check = spamc.parse_report(spamd_reply(), threshold=5.0)
    assert check.status == "yes" and check.score == 1003.4 and check.threshold == 5.0
    names = [r.name for r in check.rules]
    assert names == ["NO_RECEIVED", "MISSING_DATE", "GTUBE", "LONG_ONE", "TVD_SPACE_RATIO"]
    assert check.rules[2] == Rule("GTUBE", 1000.0, "BODY: Generic Test for Unsolicited Bulk Email")
    assert check.rules[3].description == (
        "A description long enough that SpamAssassin wraps it onto a second line"
    )


def test_our_threshold_decides_not_spamds() -> None:
    assert spamc.parse_report(spamd_reply(), threshold=2000.0).status == "no"
    clean = spamd_reply(spam="False ; 0.5 / 5.0")
    assert spamc.parse_report(clean, threshold=0.5).status == "yes"  # at the threshold


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", "not a spamd reply"),
        (b"SPAMD/1.0 76 Bad header line: BLAH\r\n", "spamd answered 76"),
        (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 3\r\n", "ended inside its header"),
        (b"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n", "no Spam:"),
        (spamd_reply()[:-5], "Content-length"),
    ],
)
def test_bad_spamd_replies(reply: bytes, reason: str) -> None:
    with pytest.raises(EngineError, match=reason):
        spamc.parse_report(reply, 5.0)


def test_pong() -> None:
    spamc.parse_pong(b"SPAMD/1.5 0 PONG\r\n")
    with pytest.raises(EngineError):
        spamc.parse_pong(b"SPAMD/1.5 0 EX_OK\r\n")


def test_rule_names_that_could_break_a_header_are_dropped() -> None:
    report = "----\n 1.0 BAD\x01NAME  x\n 1.0 GOOD_ONE  fine\x07 text\n\n"
    assert spamc.report_rules(report) == (Rule("GOOD_ONE", 1.0, "fine? text"),)


# -- clamd ------------------------------------------------------------------------------------


def test_instream_framing() -> None:
    data = b"x" * (clamd.CHUNK + 10)
    wire = b"".join(bytes(piece) for piece in clamd.instream_chunks(data))
    assert wire.startswith(b"zINSTREAM\0" + struct.pack(">I", clamd.CHUNK))
    second = 10 + 4 + clamd.CHUNK
    assert wire[second : second + 4] == struct.pack(">I", 10)
    assert wire.endswith(b"x" * 10 + b"\0\0\0\0")
    assert len(wire) == 10 + 4 + len(data) + 4 + 4
    assert b"".join(bytes(p) for p in clamd.instream_chunks(b"")) == b"zINSTREAM\0\0\0\0\0"


def test_clamd_answers() -> None:
    assert clamd.parse_instream_reply(b"stream: OK\0") == VirusCheck("clean")
    found = clamd.parse_instream_reply(b"stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0")
    assert found == VirusCheck("infected", "Eicar-Test-Signature.UNOFFICIAL")
    for bad in (b"INSTREAM size limit exceeded. ERROR\0", b"stream: x ERROR\0", b"junk"):
        with pytest.raises(EngineError):
            clamd.parse_instream_reply(bad)
    with pytest.raises(EngineError, match="not a signature name"):
        clamd.parse_instream_reply(b"stream: evil\r\nX-Injected: 1 FOUND\0")
    clamd.parse_pong(b"PONG\0")


# -- the fields in the message ----------------------------------------------------------------


def test_fields_round_trip() -> None:
    check = spamc.parse_report(spamd_reply(), 5.0)
    result = ScanResult(check, VirusCheck("clean"))
    fields = scan_headers(result)
    assert fields.startswith(b"X-Spam-Status: Yes, score=1003.4 required=5.0 tests=NO_RECEIVED,")
    assert b"\r\nX-Spam-Score: 1003.4\r\nX-Spam-Report:\r\n\t* -0.0 NO_RECEIVED " in fields
    assert b"\t* 1000.0 GTUBE BODY: Generic Test for Unsolicited Bulk Email\r\n" in fields
    assert fields.endswith(b"X-Virus-Status: Clean\r\n")
    back = read_scan(fields + b"Subject: x\r\n\r\nbody\r\n")
    assert back == result
    assert back is not None and back.rules["GTUBE"].score == 1000.0 and back.is_spam


def test_unscanned_and_infected_fields() -> None:
    result = ScanResult(SpamCheck("unscanned"), VirusCheck("unscanned"))
    assert scan_headers(result) == b"X-Spam-Status: unscanned\r\nX-Virus-Status: unscanned\r\n"
    assert read_scan(scan_headers(result)) == result
    infected = ScanResult(None, VirusCheck("infected", "Eicar-Test-Signature"))
    assert scan_headers(infected) == b"X-Virus-Status: Infected (Eicar-Test-Signature)\r\n"
    back = read_scan(scan_headers(infected))
    assert back is not None and back.virus == "Eicar-Test-Signature" and back.spam_check is None


def test_no_fields_no_verdict() -> None:
    assert read_scan(b"Subject: hi\r\n\r\nX-Spam-Status: Yes, score=9.0 required=5.0\r\n") is None
    odd = read_scan(b"X-Spam-Status: maybe\r\n\r\n")
    assert odd is not None and odd.spam_check is None


def test_strip_removes_folded_fields_in_any_case_and_keeps_the_rest() -> None:
    data = (
        b"Received: x\r\nx-spam-report:\r\n\t* 9 FAKE\r\n\t* 9 FAKE2\r\nSubject: s\r\n"
        b"X-SPAM-STATUS: No\r\nX-Virus-Status: Clean\r\n\r\nX-Spam-Status: in the body\r\n"
    )
    assert strip_scan_fields(data) == (
        b"Received: x\r\nSubject: s\r\n\r\nX-Spam-Status: in the body\r\n"
    )
    lf = b"X-Spam-Score: 1\nSubject: s\n\nbody\n"
    assert strip_scan_fields(lf) == b"Subject: s\n\nbody\n"
    assert strip_scan_fields(b"Subject: s\r\n\r\n") == b"Subject: s\r\n\r\n"


def test_summary_line() -> None:
    check = spamc.parse_report(spamd_reply(), 5.0)
    line = ScanResult(check, VirusCheck("clean")).summary()
    assert line == "spam: yes 1003.4 (MISSING_DATE,GTUBE,LONG_ONE); virus: clean"


def test_many_rules_fold_the_status_line() -> None:
    rules = tuple(Rule(f"SOME_LONG_RULE_NAME_{n:02d}", 0.1, "described") for n in range(60))
    result = ScanResult(SpamCheck("no", 6.0, 7.0, rules), None)
    fields = scan_headers(result)
    assert max(len(line) for line in fields.split(b"\r\n")) < 100
    status = fields.split(b"\r\nX-Spam-Score")[0]
    assert status.count(b"\r\n\t") > 10
    unfolded = status.replace(b"\r\n\t", b"")
    assert unfolded.endswith(b",".join(r.name.encode() for r in rules))
    assert read_scan(fields) == result
