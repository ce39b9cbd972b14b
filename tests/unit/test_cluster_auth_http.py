"""nginx's auth_http protocol as data: requests as nginx writes them, answers as it reads them."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from mailsrv.cluster.auth_http import (
    SMTP_BAD_CREDENTIALS,
    SMTP_TRY_LATER,
    AuthRequest,
    BadRequest,
    Method,
    accept,
    parse_request,
    refuse,
)


def nginx_headers(**extra: str) -> CIMultiDict[str]:
    """What nginx 1.22 sends for an IMAP LOGIN (header names in its own case)."""
    headers = CIMultiDict(
        {
            "Host": "127.0.0.2",
            "Auth-Method": "plain",
            "Auth-User": "alice",
            "Auth-Pass": "secret",
            "Auth-Protocol": "imap",
            "Auth-Login-Attempt": "1",
            "Client-IP": "192.0.2.7",
        }
    )
    headers.update(extra)
    return headers


def test_a_login_request() -> None:
    req = parse_request(nginx_headers())
    assert req == AuthRequest("imap", Method.PLAIN, "alice", "secret", "192.0.2.7", 1, "")


def test_header_names_in_any_case() -> None:
    headers = CIMultiDict({k.lower(): v for k, v in nginx_headers().items()})
    assert parse_request(headers).user == "alice"


def test_escaped_credentials_are_unescaped() -> None:
    # nginx escapes space, "%" and control characters in Auth-User and Auth-Pass.
    req = parse_request(nginx_headers(**{"Auth-User": "al%20ice", "Auth-Pass": "100%25%20sure"}))
    assert (req.user, req.password) == ("al ice", "100% sure")
    utf8 = parse_request(nginx_headers(**{"Auth-Pass": "gr%C3%BC%C3%9F"}))
    assert utf8.password == "grüß"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Auth-Protocol": "nntp"}, "Auth-Protocol"),
        ({"Auth-Method": "gssapi"}, "Auth-Method"),
        ({"Auth-Login-Attempt": "one"}, "Auth-Login-Attempt"),
        ({"Client-IP": ""}, "Client-IP"),
        ({"Auth-Pass": "%FF%FE"}, "UTF-8"),
        ({"Auth-User": "a" * 2000}, "over"),
    ],
)
def test_bad_requests_say_why(change: dict[str, str], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        parse_request(nginx_headers(**change))


@pytest.mark.parametrize("missing", ["Auth-Protocol", "Auth-Method", "Auth-User", "Client-IP"])
def test_a_missing_header_is_named(missing: str) -> None:
    headers = nginx_headers()
    del headers[missing]
    with pytest.raises(BadRequest, match=missing):
        parse_request(headers)


def test_smtp_without_auth_needs_no_user() -> None:
    headers = nginx_headers(
        **{"Auth-Method": "none", "Auth-Protocol": "smtp", "Auth-SMTP-To": "<bob@localhost>"}
    )
    del headers["Auth-User"]
    req = parse_request(headers)
    assert (req.method, req.user, req.smtp_to) == (Method.NONE, "", "<bob@localhost>")


def test_accept_names_the_host_and_port() -> None:
    assert accept("127.0.0.3", 143) == {
        "Auth-Status": "OK",
        "Auth-Server": "127.0.0.3",
        "Auth-Port": "143",
    }


def test_refusals() -> None:
    imap = parse_request(nginx_headers())
    assert refuse(imap, "Authentication failed.", wait=2) == {
        "Auth-Status": "Authentication failed.",
        "Auth-Wait": "2",
    }
    # Without Auth-Wait nginx closes the connection; with 0 it would too, so 0 becomes 1.
    assert "Auth-Wait" not in refuse(imap, "bye")
    assert refuse(imap, "x", wait=0)["Auth-Wait"] == "1"
    smtp = parse_request(nginx_headers(**{"Auth-Protocol": "smtp"}))
    assert refuse(smtp, "Authentication failed.")["Auth-Error-Code"] == SMTP_BAD_CREDENTIALS
    later = refuse(smtp, "busy", smtp_code=SMTP_TRY_LATER)
    assert later["Auth-Error-Code"] == SMTP_TRY_LATER


def test_a_refusal_is_one_line() -> None:
    # nginx copies Auth-Status into the client's NO/-ERR line.
    assert refuse(None, "two\r\nlines")["Auth-Status"] == "two lines"
