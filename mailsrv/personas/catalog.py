"""The personas, one entry each, with the public source of every difference from mailsrv.

The capability lists are the real servers' own, word for word (``persona.py`` drops what mailsrv
does not have); ``mailsrv personas`` prints this table.
"""

from __future__ import annotations

from typing import get_args

from mailsrv.config import PersonaName
from mailsrv.personas.persona import Persona, Source
from mailsrv.version import __version__

_GMAIL_IMAP = "https://developers.google.com/gmail/imap/imap-extensions"
_GMAIL_LIMITS = "https://support.google.com/mail/answer/6584"
_EXCHANGE_IMAP = (
    "https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/"
    "pop3-and-imap4/pop3-and-imap4"
)
_EXCHANGE_LIMITS = (
    "https://learn.microsoft.com/en-us/office365/servicedescriptions/"
    "exchange-online-service-description/exchange-online-limits"
)
_ICLOUD_SETTINGS = "https://support.apple.com/en-us/102525"
_ICLOUD_LIMITS = "https://support.apple.com/en-us/102383"
_DOVECOT_CAPS = "https://doc.dovecot.org/2.3/settings/core/#core_setting-imap_capability"
_GREENMAIL = "https://greenmail-mail-test.github.io/greenmail/"

MAILSRV = Persona(
    name="mailsrv",
    title="mailsrv itself (the default)",
    id_fields=(("name", "mailsrv"), ("version", __version__)),
)

GMAIL = Persona(
    name="gmail",
    title="Gmail (imap.gmail.com)",
    greeting="Gimap ready for requests from {peer} {token}",
    greeting_capability=False,
    login_capability="untagged",
    login_text="{user} authenticated (Success)",
    documented_before=(
        "IMAP4rev1",
        "UNSELECT",
        "IDLE",
        "NAMESPACE",
        "QUOTA",
        "ID",
        "XLIST",
        "CHILDREN",
        "X-GM-EXT-1",
        "XYZZY",
        "SASL-IR",
        "AUTH=XOAUTH2",
        "AUTH=PLAIN",
        "AUTH=PLAIN-CLIENTTOKEN",
        "AUTH=OAUTHBEARER",
    ),
    documented_after=(
        "IMAP4rev1",
        "UNSELECT",
        "IDLE",
        "NAMESPACE",
        "QUOTA",
        "ID",
        "XLIST",
        "CHILDREN",
        "X-GM-EXT-1",
        "UIDPLUS",
        "COMPRESS=DEFLATE",
        "ENABLE",
        "MOVE",
        "CONDSTORE",
        "ESEARCH",
        "UTF8=ACCEPT",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "LITERAL-",
        "SPECIAL-USE",
        "APPENDLIMIT",
    ),
    renames={"LITERAL-": "LITERAL+"},
    extensions=frozenset({"X-GM-EXT-1"}),
    id_fields=(
        ("name", "GImap"),
        ("vendor", "Google, Inc."),
        ("support-url", "https://support.google.com/mail"),
    ),
    special_folders={
        "\\All": "[Gmail]/All Mail",
        "\\Drafts": "[Gmail]/Drafts",
        "\\Important": "[Gmail]/Important",
        "\\Sent": "[Gmail]/Sent Mail",
        "\\Junk": "[Gmail]/Spam",
        "\\Flagged": "[Gmail]/Starred",
        "\\Trash": "[Gmail]/Trash",
    },
    noselect_folders=frozenset({"[Gmail]"}),
    all_mail=True,
    message_size=35_651_584,
    sources=(
        Source(
            "capabilities, greeting without CAPABILITY, ID answer: as imap.gmail.com "
            "sends them; its extensions",
            _GMAIL_IMAP,
        ),
        Source("X-GM-MSGID, X-GM-THRID, X-GM-LABELS, X-GM-RAW (X-GM-EXT-1)", _GMAIL_IMAP),
        Source("[Gmail]/... folders and their special-use attributes (RFC 6154)", _GMAIL_IMAP),
        Source("[Gmail]/All Mail holds a copy of every message but spam and trash", _GMAIL_IMAP),
        Source("LITERAL- for LITERAL+ (non-synchronizing literals up to 4096 octets)", "RFC 7888"),
        Source("APPENDLIMIT=35651584", _GMAIL_LIMITS),
    ),
)

OUTLOOK = Persona(
    name="outlook",
    title="Outlook.com / Exchange Online (outlook.office365.com)",
    greeting="The Microsoft Exchange IMAP4 service is ready. [{host_b64}]",
    greeting_capability=False,
    login_capability="none",
    login_text="LOGIN completed.",
    documented_before=(
        "IMAP4",
        "IMAP4rev1",
        "AUTH=PLAIN",
        "AUTH=XOAUTH2",
        "SASL-IR",
        "UIDPLUS",
        "ID",
        "UNSELECT",
        "CHILDREN",
        "IDLE",
        "NAMESPACE",
        "LITERAL+",
    ),
    documented_after=(
        "IMAP4",
        "IMAP4rev1",
        "AUTH=PLAIN",
        "AUTH=XOAUTH2",
        "SASL-IR",
        "UIDPLUS",
        "MOVE",
        "ID",
        "UNSELECT",
        "CLIENTACCEPTSAUTHENTICATIONTOKEN",
        "CHILDREN",
        "IDLE",
        "NAMESPACE",
        "LITERAL+",
    ),
    special_folders={
        "\\Archive": "Archive",
        "\\Trash": "Deleted Items",
        "\\Drafts": "Drafts",
        "\\Junk": "Junk Email",
        "\\Sent": "Sent Items",
    },
    message_size=36_700_160,
    sources=(
        Source(
            "capabilities and greeting (server name in UTF-16 base64): as "
            "outlook.office365.com sends them; its IMAP service",
            _EXCHANGE_IMAP,
        ),
        Source("folder names: Sent Items, Deleted Items, Junk Email, Archive", _EXCHANGE_IMAP),
        Source("message size limit 35 MB (no APPENDLIMIT advertised)", _EXCHANGE_LIMITS),
    ),
)

ICLOUD = Persona(
    name="icloud",
    title="iCloud Mail (imap.mail.me.com)",
    greeting="iSCREAM ready to rumble (1S:1000) {token}",
    login_capability="none",
    login_text="completed",
    documented_before=(
        "XAPPLEPUSHSERVICE",
        "IMAP4",
        "IMAP4rev1",
        "SASL-IR",
        "AUTH=ATOKEN",
        "AUTH=PLAIN",
    ),
    documented_after=(
        "XAPPLEPUSHSERVICE",
        "IMAP4",
        "IMAP4rev1",
        "ACL",
        "QUOTA",
        "LITERAL+",
        "NAMESPACE",
        "UIDPLUS",
        "CHILDREN",
        "BINARY",
        "UNSELECT",
        "SORT",
        "CATENATE",
        "URLAUTH",
        "LANGUAGE",
        "ESEARCH",
        "ESORT",
        "THREAD=ORDEREDSUBJECT",
        "THREAD=REFERENCES",
        "CONDSTORE",
        "ENABLE",
        "CONTEXT=SEARCH",
        "CONTEXT=SORT",
        "WITHIN",
        "SASL-IR",
        "SEARCHRES",
        "ID",
        "IDLE",
    ),
    special_folders={
        "\\Drafts": "Drafts",
        "\\Sent": "Sent Messages",
        "\\Trash": "Deleted Messages",
        "\\Junk": "Junk",
        "\\Archive": "Archive",
    },
    message_size=20 * 1024 * 1024,
    sources=(
        Source(
            "capabilities (no MOVE, no SPECIAL-USE listed) and greeting: as "
            "imap.mail.me.com sends them (Apple documents the settings only)",
            _ICLOUD_SETTINGS,
        ),
        Source("folder names: Sent Messages, Deleted Messages, Junk, Archive", _ICLOUD_SETTINGS),
        Source("message size limit 20 MB", _ICLOUD_LIMITS),
    ),
)

DOVECOT = Persona(
    name="dovecot",
    title="Dovecot 2.3 with Debian's default configuration",
    greeting="Dovecot (Debian) ready.",
    documented_before=(
        "IMAP4rev1",
        "SASL-IR",
        "LOGIN-REFERRALS",
        "ID",
        "ENABLE",
        "IDLE",
        "LITERAL+",
        "STARTTLS",
        "AUTH=PLAIN",
    ),
    documented_after=(
        "IMAP4rev1",
        "SASL-IR",
        "LOGIN-REFERRALS",
        "ID",
        "ENABLE",
        "IDLE",
        "SORT",
        "SORT=DISPLAY",
        "THREAD=REFERENCES",
        "THREAD=REFS",
        "THREAD=ORDEREDSUBJECT",
        "MULTIAPPEND",
        "URL-PARTIAL",
        "CATENATE",
        "UNSELECT",
        "CHILDREN",
        "NAMESPACE",
        "UIDPLUS",
        "LIST-EXTENDED",
        "I18NLEVEL=1",
        "CONDSTORE",
        "QRESYNC",
        "ESEARCH",
        "ESORT",
        "SEARCHRES",
        "WITHIN",
        "CONTEXT=SEARCH",
        "LIST-STATUS",
        "BINARY",
        "MOVE",
        "SNIPPET=FUZZY",
        "PREVIEW=FUZZY",
        "PREVIEW",
        "STATUS=SIZE",
        "SAVEDATE",
        "LITERAL+",
        "NOTIFY",
        "SPECIAL-USE",
    ),
    id_fields=(("name", "Dovecot"),),
    special_folders={"\\Drafts": "Drafts", "\\Junk": "Junk", "\\Trash": "Trash", "\\Sent": "Sent"},
    sources=(
        Source(
            "capabilities, greeting, ID answer (asked of Dovecot 2.3.19, tests/dovecot.py)",
            _DOVECOT_CAPS,
        ),
        Source("special-use folders of Debian's conf.d/15-mailboxes.conf", _DOVECOT_CAPS),
    ),
)

GREENMAIL = Persona(
    name="greenmail",
    title="GreenMail 2.1 (the Java test server)",
    greeting="IMAP4rev1 Server GreenMail v2.1.3 ready",
    greeting_capability=False,
    login_capability="none",
    login_text="LOGIN completed.",
    documented_before=("IMAP4rev1", "LITERAL+", "UIDPLUS", "SORT", "IDLE", "MOVE", "QUOTA"),
    documented_after=("IMAP4rev1", "LITERAL+", "UIDPLUS", "SORT", "IDLE", "MOVE", "QUOTA"),
    special_folders={},
    list_special_use=False,
    sources=(
        Source("capabilities (the same before and after login), no ID, no NAMESPACE", _GREENMAIL),
        Source("a new user has INBOX only", _GREENMAIL),
    ),
)

REV1 = Persona(
    name="rev1",
    title="A plain IMAP4rev1 server (RFC 3501, no extensions)",
    greeting="IMAP4rev1 Service Ready",
    greeting_capability=False,
    login_capability="none",
    login_text="LOGIN completed",
    documented_before=("IMAP4rev1", "STARTTLS", "LOGINDISABLED", "AUTH=PLAIN"),
    documented_after=("IMAP4rev1",),
    special_folders={},
    list_special_use=False,
    sources=(
        Source(
            "IMAP4rev1 only: no IDLE, MOVE, ID, ENABLE, NAMESPACE, UIDPLUS, LITERAL+, "
            "SASL-IR, ...; their commands are unknown",
            "RFC 3501",
        ),
        Source("a new user has INBOX only", "RFC 3501 §5.1"),
    ),
)

PERSONAS: dict[str, Persona] = {
    p.name: p for p in (MAILSRV, GMAIL, OUTLOOK, ICLOUD, DOVECOT, GREENMAIL, REV1)
}
if set(PERSONAS) != set(get_args(PersonaName)):  # pragma: no cover - caught at first import
    raise RuntimeError("config.PersonaName and the persona catalog disagree")


def persona_named(name: str) -> Persona:
    """The persona called ``name`` (``Config.persona`` is checked against the same names)."""
    try:
        return PERSONAS[name]
    except KeyError:
        raise ValueError(f"unknown persona {name!r}; known: {', '.join(PERSONAS)}") from None
