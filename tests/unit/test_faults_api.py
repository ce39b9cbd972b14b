"""The fault engine's ``user=``/``match=`` and the REST API's request checks (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from mailsrv.faults import FaultInjector, FaultKind
from mailsrv.web.api_faults import add_fault, fault_dict
from mailsrv.web.api_request import ApiError


def test_match_is_a_case_insensitive_glob_on_the_argument() -> None:
    faults = FaultInjector()
    fault = faults.fail("smtp", "RCPT", "550 5.1.1 gone", times=None, match="*<bounce-*@x.org>")
    assert faults.check("smtp", "RCPT", "TO:<alice@x.org>") is None
    assert faults.check("smtp", "RCPT", "TO:<Bounce-1@X.org>") is fault
    assert faults.check("smtp", "MAIL", "FROM:<bounce-1@x.org>") is None
    assert fault.hits == 1


def test_user_narrows_to_one_login() -> None:
    faults = FaultInjector()
    fault = faults.delay("imap", "*", 0.1, times=None, user="alice")
    assert faults.check("imap", "NOOP", "", None) is None  # not logged in yet
    assert faults.check("imap", "NOOP", "", "bob") is None
    assert faults.check("imap", "NOOP", "", "alice") is fault


def test_ids_are_unique_and_remove_id() -> None:
    faults = FaultInjector()
    a = faults.drop("pop3", "RETR", after_bytes=5)
    b = faults.fail("pop3", "RETR")
    assert a.id != b.id
    assert faults.remove_id(a.id) and not faults.remove_id(a.id)
    assert faults.active == [b]


def test_add_fault_builds_each_action() -> None:
    faults = FaultInjector()
    fail = add_fault(faults, {"protocol": "IMAP", "command": "fetch", "action": "fail"})
    assert (fail.protocol, fail.command, fail.kind, fail.times) == (
        "imap",
        "FETCH",
        FaultKind.FAIL,
        1,
    )
    delay = add_fault(
        faults, {"protocol": "smtp", "command": "*", "action": "delay", "seconds": 2, "times": None}
    )
    assert delay.seconds == 2.0 and delay.times is None
    drop = add_fault(
        faults,
        {"protocol": "pop3", "command": "RETR", "action": "drop", "after_bytes": 7, "user": "al"},
    )
    assert fault_dict(drop)["after_bytes"] == 7 and fault_dict(drop)["user"] == "al"
    assert fault_dict(fail)["reply"] == "NO [UNAVAILABLE] injected failure"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command": "X", "action": "fail"}, "protocol"),
        ({"protocol": 1, "command": "X", "action": "fail"}, "protocol"),
        ({"protocol": "imap", "command": "X"}, "action"),
        ({"protocol": "imap", "command": "X", "action": "fail", "after_bytes": 1}, "after_bytes"),
        ({"protocol": "imap", "command": " ", "action": "fail"}, "command"),
        ({"protocol": "imap", "command": "X", "action": "delay"}, "seconds"),
        ({"protocol": "imap", "command": "X", "action": "delay", "seconds": True}, "seconds"),
        ({"protocol": "imap", "command": "X", "action": "fail", "times": 1.5}, "times"),
        ({"protocol": "imap", "command": "X", "action": "fail", "times": -2}, "times"),
        ({"protocol": "imap", "command": "X", "action": "fail", "match": ["a"]}, "match"),
        ({"protocol": "pop3", "command": "X", "action": "fail", "reply": "NO x"}, "reply"),
        ({"protocol": "imap", "command": "X", "action": "fail", "user": ""}, "user"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    faults = FaultInjector()
    with pytest.raises(ApiError) as caught:
        add_fault(faults, body)
    assert caught.value.status == 400 and field in caught.value.message
    assert faults.active == []


def test_strip_starttls_hides_and_refuses() -> None:
    faults = FaultInjector()
    assert not faults.starttls_stripped("pop3")
    fault = faults.strip_starttls("POP3")
    assert faults.starttls_stripped("pop3") and not faults.starttls_stripped("imap")
    assert faults.check("pop3", "STLS") is fault and fault.reply.startswith("-ERR")
    assert faults.check("pop3", "STLS") is fault  # until removed
    assert faults.check("pop3", "CAPA") is None
    with pytest.raises(ValueError, match="strip-starttls protocol"):
        faults.strip_starttls("lmtp")
    api = add_fault(faults, {"protocol": "smtp", "action": "strip-starttls", "user": "bob"})
    assert fault_dict(api)["action"] == "strip-starttls" and api.reply.startswith("502")
    assert faults.starttls_stripped("smtp", "bob") and not faults.starttls_stripped("smtp", "al")
