"""LIST and LSUB (RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154).

Patterns: ``*`` matches anything, ``%`` anything but the delimiter; the reference is joined in
front of the pattern. A reference or pattern that is not a valid name on the wire (neither
modified UTF-7 nor UTF-8) names nothing: OK and no results, no error, as Dovecot answers. Folders
that exist only as the parent of another (``A`` when only ``A/B`` exists) are listed with
``\\NonExistent`` (implies ``\\Noselect``) so hierarchy browsers work.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mailsrv.imap.commands import ListCommand
from mailsrv.imap.errors import CommandFailed
from mailsrv.imap.folder_status import status_line
from mailsrv.imap.mailbox_names import BadMailboxName, decode_name, encode_name
from mailsrv.store.base import HIERARCHY_DELIMITER, INBOX, FolderInfo, StoreError

if TYPE_CHECKING:
    from mailsrv.imap.session import ImapSession


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regex for a LIST pattern; an INBOX prefix matches in any case."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    if pattern[:5].upper() == INBOX and (len(pattern) == 5 or pattern[5] in "/*%"):
        body = "(?i:INBOX)" + "".join(out[5:])
    return re.compile(body + r"\Z", re.DOTALL)


def join_reference(reference: str, pattern: str) -> str:
    if not reference or pattern.startswith(HIERARCHY_DELIMITER):
        return pattern
    if reference.endswith(HIERARCHY_DELIMITER):
        return reference + pattern
    return reference + HIERARCHY_DELIMITER + pattern


def _with_parents(folders: list[FolderInfo]) -> dict[str, FolderInfo | None]:
    """Every folder by name, plus missing parents (None)."""
    out: dict[str, FolderInfo | None] = {f.name: f for f in folders}
    for f in folders:
        parts = f.name.split(HIERARCHY_DELIMITER)
        for i in range(1, len(parts)):
            out.setdefault(HIERARCHY_DELIMITER.join(parts[:i]), None)
    return out


def _attributes(
    name: str, f: FolderInfo | None, names: dict[str, FolderInfo | None], subscribed: bool
) -> list[str]:
    prefix = name + HIERARCHY_DELIMITER
    children = any(n.startswith(prefix) for n in names)
    attrs = ["\\NonExistent", "\\Noselect"] if f is None else []
    attrs.append("\\HasChildren" if children else "\\HasNoChildren")
    if f is not None and f.special_use:
        attrs.append(f.special_use)
    if subscribed and f is not None and f.subscribed:
        attrs.append("\\Subscribed")
    return attrs


def _decoded(s: ImapSession, raw: bytes) -> str | None:
    """A reference or pattern as a store name; None when it is not a valid wire name, which
    names nothing (Dovecot answers OK with no results too)."""
    try:
        return decode_name(raw, utf8=s.utf8)
    except BadMailboxName:
        return None


async def list_folders(s: ImapSession, cmd: ListCommand) -> None:
    reference = _decoded(s, cmd.reference)
    patterns = [_decoded(s, p) for p in cmd.patterns]
    lsub = cmd.name == "LSUB"
    if patterns == [""] and not cmd.selection:
        # RFC 9051 §6.3.9: the empty pattern asks for the delimiter and the root.
        s.out.write(b'* %s (\\Noselect) "/" ""\r\n' % cmd.name.encode())
        await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.")
        return
    only_subscribed = lsub or "SUBSCRIBED" in cmd.selection
    show_subscribed = only_subscribed or "SUBSCRIBED" in cmd.returns
    special_only = "SPECIAL-USE" in cmd.selection
    recursive = "RECURSIVEMATCH" in cmd.selection
    if recursive and not (set(cmd.selection) - {"RECURSIVEMATCH", "REMOTE"}):
        raise CommandFailed("BAD", "RECURSIVEMATCH needs another selection option")
    folders = await s.ctx.store.list_folders(s.username)
    names = _with_parents(folders)
    wanted = [join_reference(reference, p) for p in patterns if p and reference is not None]
    regexes = [pattern_regex(w) for w in wanted]
    kind = cmd.name.encode()
    for name in sorted(names, key=lambda n: (n != INBOX, n)):
        if not any(r.match(name) for r in regexes):
            continue
        f = names[name]
        extra = b""
        if only_subscribed and (f is None or not f.subscribed):
            if not (recursive and _has_subscribed_child(name, names)):
                continue
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
        if special_only and (f is None or not f.special_use):
            continue
        if lsub and f is None:
            continue
        attrs = _attributes(name, f, names, show_subscribed and not lsub)
        wire = encode_name(name, utf8=s.utf8)
        s.out.write(b'* %s (%s) "/" %s%s\r\n' % (kind, " ".join(attrs).encode(), wire, extra))
        if cmd.status_items and f is not None:
            await _status(s, name, cmd.status_items)
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.")


def _has_subscribed_child(name: str, names: dict[str, FolderInfo | None]) -> bool:
    prefix = name + HIERARCHY_DELIMITER
    return any(n.startswith(prefix) and f is not None and f.subscribed for n, f in names.items())


async def _status(s: ImapSession, name: str, items: tuple[str, ...]) -> None:
    try:
        s.out.write(await status_line(s, name, items))
    except StoreError:
        pass  # RFC 5819 §2: a folder that cannot be opened is listed without STATUS
