"""The commands a persona does not offer: refused before they run, as that server refuses them.

A persona (``mailsrv.personas``) advertises a subset of mailsrv's extensions; the commands and
arguments of the others must fail as they would on a server without them, or a client testing
against the persona would learn nothing (RFC 9051 §6: an extension's command is unknown to a
server that does not advertise it). ``refusal`` names the capability each command or argument
needs and answers ``BAD`` (or ``NO [CANNOT]`` for an authentication mechanism) when the persona
lacks it. The default persona offers everything mailsrv has but the extensions kept for one
persona (Gmail's X-GM-EXT-1).
"""

from __future__ import annotations

from collections.abc import Iterable

from mailsrv.imap.commands import (
    Append,
    Authenticate,
    Command,
    Compress,
    Copy,
    Enable,
    Fetch,
    Id,
    Idle,
    ListCommand,
    Namespace,
    Search,
    Select,
    Sort,
    Status,
    StoreCommand,
    StoreLabels,
    UidExpunge,
    Unselect,
    UrlFetch,
)
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.gmail_names import GMAIL_ITEMS, GMAIL_KEYS
from mailsrv.imap.tokens import Atom, Token
from mailsrv.personas.persona import Persona

#: Commands that exist only with an extension (RFC numbers: 2177, 6851, 5161, 2971, 2342, 3691,
#: 4978, 4315).
_COMMAND_EXTENSIONS: dict[type[Command], str] = {
    Idle: "IDLE",
    Enable: "ENABLE",
    Id: "ID",
    Namespace: "NAMESPACE",
    Unselect: "UNSELECT",
    Compress: "COMPRESS=DEFLATE",
    UidExpunge: "UIDPLUS",
    StoreLabels: "X-GM-EXT-1",
}
#: Extension commands known by name (so commands mailsrv gains later are gated as soon as they
#: exist): the capability, or the family (``THREAD`` for ``THREAD=REFERENCES``...).
_NAMED_EXTENSIONS: dict[str, str] = {
    "SORT": "SORT",
    "THREAD": "THREAD",
    "GETQUOTA": "QUOTA",
    "GETQUOTAROOT": "QUOTA",
    "SETQUOTA": "QUOTA",
    "GETMETADATA": "METADATA",
    "SETMETADATA": "METADATA",
    "NOTIFY": "NOTIFY",
    "GETACL": "ACL",
    "SETACL": "ACL",
    "DELETEACL": "ACL",
    "LISTRIGHTS": "ACL",
    "MYRIGHTS": "ACL",
    "XLIST": "XLIST",
    "CANCELUPDATE": "CONTEXT",
    "GENURLAUTH": "URLAUTH",
    "RESETKEY": "URLAUTH",
    "URLFETCH": "URLAUTH",
}
#: Fetch items of extensions (RFC 7162 MODSEQ, RFC 8970 PREVIEW, RFC 8514 SAVEDATE).
_FETCH_EXTENSIONS: dict[str, str] = {
    "MODSEQ": "CONDSTORE",
    "PREVIEW": "PREVIEW",
    "SAVEDATE": "SAVEDATE",
    "EMAILID": "OBJECTID",
    "THREADID": "OBJECTID",
}
_BINARY_ITEMS = frozenset({"BINARY", "BINARY.PEEK", "BINARY.SIZE"})
#: RFC 5032 search keys.
_WITHIN_KEYS = frozenset({"OLDER", "YOUNGER"})
_MODSEQ_KEYS = frozenset({"MODSEQ"})
_OBJECTID_KEYS = frozenset({"EMAILID", "THREADID"})
_SAVEDATE_KEYS = frozenset({"SAVEDBEFORE", "SAVEDON", "SAVEDSINCE", "SAVEDATESUPPORTED"})
#: The search keys of each extension, in the order SEARCH is checked for them.
_SEARCH_EXTENSIONS = (
    (GMAIL_KEYS, "X-GM-EXT-1"),
    (_WITHIN_KEYS, "WITHIN"),
    (_MODSEQ_KEYS, "CONDSTORE"),
    (_OBJECTID_KEYS, "OBJECTID"),
    (_SAVEDATE_KEYS, "SAVEDATE"),
)


def refusal(persona: Persona, cmd: Command) -> CommandFailed | None:
    """Why ``persona`` does not run ``cmd``, or None when it does."""
    if isinstance(cmd, Authenticate):
        if not persona.offers("AUTH=" + cmd.mechanism.upper()):
            return CommandFailed("NO", "Unsupported authentication mechanism", "CANNOT")
        if cmd.initial is not None and not persona.offers("SASL-IR"):
            return CommandFailed("BAD", "Invalid arguments (SASL-IR is not supported)")
        return None
    needed = _needed(cmd)
    if needed is None or persona.offers(needed) or persona.offers_family(needed):
        return None
    if isinstance(cmd, StoreLabels | Fetch):
        return CommandFailed("BAD", "Invalid arguments")  # as for any unknown data item
    if type(cmd) in _COMMAND_EXTENSIONS or needed == "MOVE" or cmd.name in _NAMED_EXTENSIONS:
        return CommandFailed("BAD", "Unknown command")
    return CommandFailed("BAD", f"Invalid arguments ({needed} is not supported)")


def _needed(cmd: Command) -> str | None:
    """The capability ``cmd`` needs beyond IMAP4rev1 (RFC 3501), if any."""
    if isinstance(cmd, UrlFetch) and any(i.extended for i in cmd.items):
        return "URLAUTH=BINARY"  # RFC 5524's parameters
    extension = _COMMAND_EXTENSIONS.get(type(cmd)) or _NAMED_EXTENSIONS.get(cmd.name)
    if extension is not None:
        return extension
    if isinstance(cmd, Copy):
        return "MOVE" if cmd.move else None
    if isinstance(cmd, ListCommand):
        if cmd.status_items:
            return "LIST-STATUS"
        return "LIST-EXTENDED" if cmd.selection or cmd.returns else None
    if isinstance(cmd, Select):  # RFC 7162 §3.1.8, §3.2.5
        return "QRESYNC" if cmd.qresync is not None else "CONDSTORE" if cmd.condstore else None
    if isinstance(cmd, StoreCommand):
        return "CONDSTORE" if cmd.unchangedsince is not None else None
    if isinstance(cmd, Status):
        if "HIGHESTMODSEQ" in cmd.items:
            return "CONDSTORE"
        if "MAILBOXID" in cmd.items:
            return "OBJECTID"
        return "STATUS=SIZE" if "SIZE" in cmd.items else None
    if isinstance(cmd, Fetch):
        if cmd.vanished:
            return "QRESYNC"
        if cmd.changedsince is not None:
            return "CONDSTORE"
        if any(i.name in GMAIL_ITEMS for i in cmd.items):
            return "X-GM-EXT-1"
        for item in cmd.items:
            if item.name in _FETCH_EXTENSIONS:
                return _FETCH_EXTENSIONS[item.name]
        return "BINARY" if any(i.name in _BINARY_ITEMS for i in cmd.items) else None
    if isinstance(cmd, Append):
        if len(cmd.messages) > 1:
            return "MULTIAPPEND"
        if any(not isinstance(m.message, bytes) for m in cmd.messages):
            return "CATENATE"
        return "BINARY" if any(m.binary for m in cmd.messages) else None
    if isinstance(cmd, Search):
        words = _atoms(cmd.args)
        for keys, capability in _SEARCH_EXTENSIONS:
            if words & keys:
                return capability
        return _return_options(cmd.args, "ESEARCH", "CONTEXT=SEARCH")
    if isinstance(cmd, Sort):
        return _return_options(cmd.args, "ESORT", "CONTEXT=SORT")
    return None


def _atoms(args: Iterable[Token], into: set[str] | None = None) -> set[str]:
    """Every atom in ``args`` (parenthesized groups included), in upper case."""
    found = set() if into is None else into
    for tok in args:
        if isinstance(tok, list):
            _atoms(tok, found)
        elif isinstance(tok, Atom):
            found.add(tok.value.upper())
    return found


def _return_options(args: tuple[Token, ...], plain: str, context: str) -> str | None:
    """What SEARCH/SORT ``RETURN (...)`` needs: ESEARCH/ESORT (RFC 4731, RFC 5267), CONTEXT=*
    for UPDATE and CONTEXT (RFC 5267 §4), PARTIAL (RFC 9394)."""
    first = args[0] if args else None
    if not (isinstance(first, Atom) and first.value.upper() == "RETURN"):
        return None
    options = args[1] if len(args) > 1 and isinstance(args[1], list) else []
    names = {o.value.upper() for o in options if isinstance(o, Atom)}
    if "PARTIAL" in names:
        return "PARTIAL"
    return context if names & {"UPDATE", "CONTEXT"} else plain
