"""nginx's mail auth_http protocol as data: the request headers in, the answer headers out.

nginx's mail proxy asks, for every login, ``GET <uri>`` with ``Auth-User``, ``Auth-Pass``
(both URL-escaped: space, ``%`` and control characters as ``%XX``), ``Auth-Protocol`` (imap,
pop3, smtp), ``Auth-Method`` (plain for PLAIN, LOGIN and USER/PASS; apop, cram-md5; none for
SMTP without AUTH, with ``Auth-SMTP-From``/``Auth-SMTP-To``), ``Auth-Login-Attempt`` and
``Client-IP``. It reads only the answer's headers, never its status: ``Auth-Status: OK`` with
``Auth-Server`` (an IP address) and ``Auth-Port`` sends the client there; any other status is
the message the client is refused with (``NO``/``-ERR``, or for SMTP after ``Auth-Error-Code``),
and the connection is closed unless ``Auth-Wait`` gives seconds to wait before the client may
try again. nginx reads at most 1 KiB of answer, so answers stay small.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

#: The protocols nginx's mail proxy speaks, as it names them in ``Auth-Protocol``.
PROTOCOLS = ("imap", "pop3", "smtp")
#: Longest user name or password taken from a request (nginx's own line limits are smaller).
MAX_CREDENTIAL = 1024
#: The SMTP reply code nginx sends when an answer gives none (RFC 4954 §6: bad credentials).
SMTP_BAD_CREDENTIALS = "535 5.7.8"
#: For a refusal that may pass: blocked address, no host up (RFC 4954 §6, RFC 3463).
SMTP_TRY_LATER = "454 4.7.0"


class Method(enum.Enum):
    """How the client logged in, as nginx says it (``Auth-Method``)."""

    PLAIN = "plain"  # PLAIN, LOGIN, USER/PASS, IMAP LOGIN: the password is in Auth-Pass
    APOP = "apop"
    CRAM_MD5 = "cram-md5"
    EXTERNAL = "external"
    NONE = "none"  # SMTP without AUTH (``smtp_auth none``)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """One auth_http request, unescaped and checked."""

    protocol: str
    method: Method
    user: str
    password: str
    client_ip: str
    #: Which try this is on the client's connection (1 for the first).
    attempt: int = 1
    #: The first recipient, for SMTP without AUTH.
    smtp_to: str = ""


class BadRequest(ValueError):
    """A request that is not nginx's auth_http; ``str()`` says what is wrong."""


def _header(headers: Mapping[str, str], name: str, required: bool = True) -> str:
    value = headers.get(name)
    if value is None:
        if required:
            raise BadRequest(f"the {name} header is missing")
        return ""
    return value.strip()


def unescape(value: str, name: str) -> str:
    """``Auth-User``/``Auth-Pass`` as the client typed them (nginx escapes them as ``%XX``)."""
    try:
        raw = unquote_to_bytes(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        raise BadRequest(f"the {name} header is not text") from None
    if len(raw) > MAX_CREDENTIAL:
        raise BadRequest(f"the {name} header is over {MAX_CREDENTIAL} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"the {name} header is not UTF-8") from None


def parse_request(headers: Mapping[str, str]) -> AuthRequest:
    """The request nginx sent (header names in any case: pass a case-insensitive mapping)."""
    protocol = _header(headers, "Auth-Protocol").lower()
    if protocol not in PROTOCOLS:
        raise BadRequest(f"Auth-Protocol must be imap, pop3 or smtp, not {protocol!r}")
    method_text = _header(headers, "Auth-Method").lower()
    try:
        method = Method(method_text)
    except ValueError:
        raise BadRequest(f"unknown Auth-Method {method_text!r}") from None
    attempt_text = _header(headers, "Auth-Login-Attempt", required=False) or "1"
    if not (attempt_text.isascii() and attempt_text.isdigit()) or len(attempt_text) > 6:
        raise BadRequest(f"Auth-Login-Attempt must be a number, not {attempt_text!r}")
    client_ip = _header(headers, "Client-IP")
    if not client_ip:
        raise BadRequest("the Client-IP header is empty")
    return AuthRequest(
        protocol=protocol,
        method=method,
        user=unescape(
            _header(headers, "Auth-User", required=method is not Method.NONE), "Auth-User"
        ),
        password=unescape(_header(headers, "Auth-Pass", required=False), "Auth-Pass"),
        client_ip=client_ip,
        attempt=max(int(attempt_text), 1),
        smtp_to=_header(headers, "Auth-SMTP-To", required=False),
    )


def accept(server: str, port: int) -> dict[str, str]:
    """The answer that sends the client to ``server:port``."""
    return {"Auth-Status": "OK", "Auth-Server": server, "Auth-Port": str(port)}


def refuse(
    request: AuthRequest | None,
    message: str,
    wait: int | None = None,
    smtp_code: str = SMTP_BAD_CREDENTIALS,
) -> dict[str, str]:
    """The answer that refuses the client with ``message``; with ``wait`` seconds, nginx lets
    the client try again on the same connection after that long (at least 1: nginx closes
    on 0), without it closes."""
    # nginx copies the status into the client's reply line: one line of plain text.
    text = " ".join(message.replace("\r", " ").replace("\n", " ").split()) or "refused"
    out = {"Auth-Status": text}
    if wait is not None:
        out["Auth-Wait"] = str(max(wait, 1))  # 0 would make nginx close
    if request is None or request.protocol == "smtp":
        out["Auth-Error-Code"] = smtp_code
    return out
