"""Server responses as bytes (RFC 9051 §7): status lines, capabilities, and store errors.

Every string that reaches the wire goes through ``mailsrv.imap.strings`` (atom, quoted or
literal as the value needs). Store failures become ``NO`` replies with a response code here and
only here (``store_error``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mailsrv.store.base import (
    FolderExists,
    InvalidName,
    MessageGone,
    MessageTooLarge,
    NoSuchFolder,
    NoSuchUser,
    OverQuota,
    StoreBusy,
    StoreError,
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: Capabilities every session has, in the order we advertise them.
BASE_CAPABILITIES = ("IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE")
#: What a logged-in session adds (RFC numbers in comments of the modules that implement them).
AUTHENTICATED_CAPABILITIES = (
    "NAMESPACE",
    "UIDPLUS",
    "MULTIAPPEND",  # RFC 3502 (append_cmd.py)
    "CATENATE",  # RFC 4469 (append_cmd.py, imap_url.py)
    "URLAUTH",  # RFC 4467 (urlauth_cmd.py, urlauth.py, store/access_keys.py)
    "URLAUTH=BINARY",  # RFC 5524
    "OBJECTID",  # RFC 8474 (object_ids.py)
    "PREVIEW",  # RFC 8970 (message/preview.py)
    "SAVEDATE",  # RFC 8514 (MaildirMailbox.save_date: the file's ctime, first seen)
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "ESEARCH",
    "SEARCHRES",
    "CONDSTORE",
    "QRESYNC",
    "SORT",
    "SORT=DISPLAY",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "THREAD=ORDEREDSUBJECT",
    "ESORT",
    "CONTEXT=SEARCH",
    "CONTEXT=SORT",
    "PARTIAL",
    "WITHIN",
    "I18NLEVEL=1",
    "BINARY",
    "STATUS=SIZE",
    "UTF8=ACCEPT",
    "QUOTA",  # RFC 9208 (quota_cmd.py): the resources counted, no QUOTASET
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",
    "NOTIFY",  # RFC 5465 (notify.py, notify_args.py)
)


def capabilities(
    *,
    authenticated: bool,
    tls: bool,
    starttls: bool,
    plaintext: bool,
    append_limit: int,
    compress: bool = False,
    mechanisms: Sequence[str] = ("PLAIN", "LOGIN"),
) -> str:
    """The CAPABILITY list for a session in this situation (RFC 9051 §6.1.1); ``compress``
    when the connection can do COMPRESS=DEFLATE (RFC 4978); ``mechanisms``: the SASL ones that
    can work now (offered only where plaintext logins are allowed)."""
    caps = list(BASE_CAPABILITIES)
    if not authenticated:
        if starttls and not tls:
            caps.append("STARTTLS")
        caps.extend([f"AUTH={m}" for m in mechanisms] if plaintext else ["LOGINDISABLED"])
    caps.extend(AUTHENTICATED_CAPABILITIES)
    if compress:
        caps.append("COMPRESS=DEFLATE")
    caps.append(f"APPENDLIMIT={append_limit}")
    return " ".join(caps)


def tagged(tag: str, status: str, text: str, code: str | None = None) -> bytes:
    """``tag OK [CODE] text``."""
    code_part = f"[{code}] " if code else ""
    return f"{tag} {status} {code_part}{text}\r\n".encode()


def untagged(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return b"* " + data + b"\r\n"


def continuation(text: str = "") -> bytes:
    return f"+ {text}\r\n".encode()


def internal_date(seconds: float) -> bytes:
    """``"17-Jul-1996 02:44:25 +0000"`` (RFC 3501 date-time, in UTC)."""
    t = time.gmtime(seconds)
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        t.tm_mday,
        _MONTHS[t.tm_mon - 1].encode(),
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def flag_list(flags: frozenset[str] | tuple[str, ...] | list[str], recent: bool = False) -> bytes:
    """``(\\Seen $Forwarded)`` with system flags first, then keywords, each group sorted."""
    ordered = sorted(flags, key=lambda f: (not f.startswith("\\"), f))
    if recent:
        ordered.append("\\Recent")
    return b"(" + " ".join(ordered).encode() + b")"


def store_error(exc: StoreError) -> tuple[str, str, str]:
    """(status, response code, text) for a store failure (RFC 5530 response codes)."""
    if isinstance(exc, NoSuchFolder):
        return "NO", "NONEXISTENT", "Mailbox doesn't exist"
    if isinstance(exc, FolderExists):
        return "NO", "ALREADYEXISTS", "Mailbox already exists"
    if isinstance(exc, InvalidName):
        return "NO", "CANNOT", _reason(exc, "Invalid mailbox name")
    if isinstance(exc, MessageGone):
        return "NO", "EXPUNGEISSUED", "Some of the requested messages no longer exist"
    if isinstance(exc, MessageTooLarge):
        return "NO", "TOOBIG", "Message too large"
    if isinstance(exc, OverQuota):
        return "NO", "OVERQUOTA", "Quota exceeded (mailbox for user is full)"
    if isinstance(exc, StoreBusy):
        return "NO", "INUSE", "Mailbox is busy, try again later"
    if isinstance(exc, NoSuchUser):
        return "NO", "UNAVAILABLE", "Mailbox store unavailable"
    return "NO", "SERVERBUG", "Internal error occurred, refer to server log"


def _reason(exc: StoreError, default: str) -> str:
    """InvalidName carries a reason written for users (see store/names.py); keep it one line."""
    text = str(exc).replace("\r", " ").replace("\n", " ").strip()
    if not text or len(text) > 200:
        return default
    return text[0].upper() + text[1:]
