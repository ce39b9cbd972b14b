"""URLAUTH-authorized IMAP URLs (RFC 4467 §2, §3, §7): parsing, signing and checking.

An authorized URL is an absolute IMAP URL to one message or part, then ``[;EXPIRE=<date-time>]
;URLAUTH=<access>`` (the *rump*), then ``:<mechanism>:<token>``. mailsrv has one mechanism,
``INTERNAL``: the token is the hex HMAC-SHA1 of the rump, keyed with the owner's access key for
the URL's mailbox (``store/access_keys.py``). Access identifiers: ``anonymous``, ``authuser``
(any logged-in user), ``user+<name>`` (that user), ``submit+<name>`` (a message submission
agent acting for that user: mailsrv has none, so such URLs are made but fetch as NIL).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_to_bytes

from mailsrv.imap.imap_url import BadUrl, ImapUrl, parse_imap_url

#: The one mechanism (RFC 4467 §3: every server that has URLAUTH has INTERNAL).
INTERNAL = "INTERNAL"
_MECHANISM = re.compile(rb"[A-Za-z0-9.-]{1,64}\Z")
_TOKEN = re.compile(rb"[0-9A-Fa-f]{32,}\Z")
_URLAUTH = b";urlauth="
_EXPIRE = b";expire="


@dataclass(frozen=True, slots=True)
class Access:
    """Who may fetch: ``kind`` is anonymous, authuser, user or submit; ``name`` for the last
    two."""

    kind: str
    name: str | None = None

    def allows(self, user: str) -> bool:
        """``user`` (logged in over IMAP, not as a submission agent) may fetch."""
        if self.kind in ("anonymous", "authuser"):
            return True
        return self.kind == "user" and self.name == user


@dataclass(frozen=True, slots=True)
class AuthUrl:
    """A URL with ``;URLAUTH=``; ``mechanism`` and ``token`` None for a rump (what GENURLAUTH
    takes)."""

    target: ImapUrl
    owner: str
    rump: bytes
    access: Access
    expire: datetime | None = None
    mechanism: str | None = None
    token: bytes | None = None


def has_urlauth(url: bytes) -> bool:
    return _URLAUTH in url.lower()


def parse_auth_url(url: bytes) -> AuthUrl:
    """Parse a rump or a full authorized URL; raises ``BadUrl``."""
    at = url.lower().find(_URLAUTH)
    if at < 0:
        raise BadUrl("no ;URLAUTH= in the URL")
    tail = url[at + len(_URLAUTH) :]
    access_text, colon, auth = tail.partition(b":")
    rump = url[: at + len(_URLAUTH) + len(access_text)]
    mechanism = token = None
    if colon:
        mech, colon2, token = auth.partition(b":")
        if not colon2 or not _MECHANISM.match(mech) or not _TOKEN.match(token):
            raise BadUrl("bad URLAUTH mechanism or token")
        mechanism = mech.decode("ascii").upper()
    head = url[:at]
    expire = None
    cut = head.lower().find(_EXPIRE)
    if cut >= 0:
        expire = _date_time(head[cut + len(_EXPIRE) :])
        head = head[:cut]
    target = parse_imap_url(head)
    if target.mailbox is None or target.user is None or not head.lower().startswith(b"imap://"):
        raise BadUrl("a URLAUTH URL is absolute and names its user")
    owner = _text(target.user)
    return AuthUrl(target, owner, rump, _access(access_text), expire, mechanism, token)


def sign(rump: bytes, key: bytes) -> bytes:
    """The INTERNAL token of ``rump``: lowercase hex HMAC-SHA1 (RFC 4467 §7, RFC 2104)."""
    return hmac.new(key, rump, hashlib.sha1).hexdigest().encode("ascii")


def authorized_form(rump: bytes, key: bytes) -> bytes:
    """``rump:internal:<token>``, the URL GENURLAUTH answers."""
    return rump + b":internal:" + sign(rump, key)


def token_matches(url: AuthUrl, key: bytes) -> bool:
    """The URL carries the INTERNAL token ``key`` makes for its rump (compared in constant
    time)."""
    if url.mechanism != INTERNAL or url.token is None:
        return False
    return hmac.compare_digest(sign(url.rump, key), url.token.lower())


def _access(text: bytes) -> Access:
    low = text.lower()
    if low in (b"anonymous", b"authuser"):
        return Access(low.decode("ascii"))
    kind, plus, name = low.partition(b"+")
    if plus and kind in (b"user", b"submit") and name:
        return Access(kind.decode("ascii"), _text(text[len(kind) + 1 :]))
    raise BadUrl("bad URLAUTH access identifier")


def _text(encoded: bytes) -> str:
    try:
        return unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        raise BadUrl("user name is not UTF-8") from None


def _date_time(text: bytes) -> datetime:
    """RFC 3339 ``date-time``, with its zone."""
    try:
        value = datetime.fromisoformat(unquote_to_bytes(text).decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise BadUrl("bad EXPIRE date-time") from None
    if value.tzinfo is None:
        raise BadUrl("EXPIRE without a time zone")
    return value
