"""LIST and LSUB (RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154).

Patterns: ``*`` matches anything, ``%`` anything but the delimiter; the reference is joined in
front of the pattern. A reference or pattern that is not a valid name on the wire (neither
modified UTF-7 nor UTF-8) names nothing: OK and no results, no error, as Dovecot answers. Folders
that exist only as the parent of another (``A`` when only ``A/B`` exists) are listed with
``\\NonExistent`` (implies ``\\Noselect``) so hierarchy browsers work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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


def _parents(name: str) -> list[str]:
    """``A`` and ``A/B`` for ``A/B/C``."""
    parts = name.split(HIERARCHY_DELIMITER)
    return [HIERARCHY_DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def _with_parents(folders: list[FolderInfo]) -> dict[str, FolderInfo | None]:
    """Every folder by name, plus missing parents (None)."""
    out: dict[str, FolderInfo | None] = {f.name: f for f in folders}
    for f in folders:
        for parent in _parents(f.name):
            out.setdefault(parent, None)
    return out


@dataclass(frozen=True, slots=True)
class _Listing:
    """What one LIST or LSUB looks at: the folders, the subscriptions, the patterns."""

    names: dict[str, FolderInfo | None]  # folders and their missing parents
    subscribed: frozenset[str]  # every subscribed name, its folder there or not
    regexes: list[re.Pattern[str]]
    #: The names that may be listed: ``names``, and for LSUB and LIST (SUBSCRIBED) also the
    #: subscribed names whose folder is gone and the levels above them.
    tree: frozenset[str]

    def children_attribute(self, name: str) -> str:
        prefix = name + HIERARCHY_DELIMITER
        return (
            "\\HasChildren" if any(n.startswith(prefix) for n in self.tree) else "\\HasNoChildren"
        )

    def matched(self, name: str) -> bool:
        return any(r.match(name) for r in self.regexes)

    def unmatched_subscribed_child(self, name: str) -> bool:
        """A subscribed descendant that no pattern matches: why RECURSIVEMATCH gives a parent
        CHILDINFO (RFC 5258 §3.5) and LSUB's ``%`` gives it ``\\Noselect`` (RFC 3501 §6.3.9)."""
        prefix = name + HIERARCHY_DELIMITER
        return any(n.startswith(prefix) and not self.matched(n) for n in self.subscribed)


def _list_entry(
    name: str, listing: _Listing, cmd: ListCommand, only_subscribed: bool
) -> tuple[list[str], bytes] | None:
    """A LIST line's attributes and extended data, or None when ``name`` is not listed."""
    f = listing.names.get(name)
    subscribed = name in listing.subscribed
    childinfo = "RECURSIVEMATCH" in cmd.selection and listing.unmatched_subscribed_child(name)
    if only_subscribed and not (subscribed or childinfo):
        return None
    if "SPECIAL-USE" in cmd.selection and (f is None or not f.special_use):
        return None
    attrs: list[str] = []
    if f is None:
        # RFC 5258 §5 answers SUBSCRIBED with \NonExistent alone, as Dovecot does.
        attrs += ["\\NonExistent"] if only_subscribed else ["\\NonExistent", "\\Noselect"]
    attrs.append(listing.children_attribute(name))
    if f is not None and f.special_use:
        attrs.append(f.special_use)
    if subscribed and (only_subscribed or "SUBSCRIBED" in cmd.returns):
        attrs.append("\\Subscribed")
    return attrs, b' ("CHILDINFO" ("SUBSCRIBED"))' if childinfo else b""


def _lsub_entry(name: str, listing: _Listing, pattern_ends_in_percent: bool) -> list[str] | None:
    """An LSUB line's attributes, or None. A subscribed name is listed whether its folder is
    there or not; an unsubscribed one only as the ``\\Noselect`` level a ``%`` stopped at above
    subscribed names (RFC 3501 §6.3.9), as Dovecot does."""
    f = listing.names.get(name)
    if name in listing.subscribed:
        attrs = [listing.children_attribute(name)]
        if f is not None and f.special_use:
            attrs.append(f.special_use)
        return attrs
    if pattern_ends_in_percent and listing.unmatched_subscribed_child(name):
        return ["\\Noselect", listing.children_attribute(name)]
    return None


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
    if "RECURSIVEMATCH" in cmd.selection and not (
        set(cmd.selection) - {"RECURSIVEMATCH", "REMOTE"}
    ):
        raise CommandFailed("BAD", "RECURSIVEMATCH needs another selection option")
    store = s.ctx.store
    names = _with_parents(await store.list_folders(s.username))
    subscribed: frozenset[str] = frozenset()
    if only_subscribed or "SUBSCRIBED" in cmd.returns:
        subscribed = frozenset(await store.list_subscriptions(s.username))
    wanted = [join_reference(reference, p) for p in patterns if p and reference is not None]
    tree = set(names)
    if only_subscribed:
        for name in subscribed:
            tree.update([name, *_parents(name)])
    listing = _Listing(names, subscribed, [pattern_regex(w) for w in wanted], frozenset(tree))
    percent = any(w.endswith("%") for w in wanted)
    kind = cmd.name.encode()
    persona = s.ctx.persona
    for name in sorted(tree, key=lambda n: (n != INBOX, n)):
        if not listing.matched(name):
            continue
        if lsub:
            attrs = _lsub_entry(name, listing, percent)
            entry = None if attrs is None else (attrs, b"")
        else:
            entry = _list_entry(name, listing, cmd, only_subscribed)
        if entry is None:
            continue
        wire = encode_name(name, utf8=s.utf8)
        shown = " ".join(persona.list_attributes(name, entry[0])).encode()
        s.out.write(b'* %s (%s) "/" %s%s\r\n' % (kind, shown, wire, entry[1]))
        if cmd.status_items and names.get(name) is not None:
            await _status(s, name, cmd.status_items)
    await s.ok(cmd.tag, f"{cmd.name.capitalize()} completed.")


async def _status(s: ImapSession, name: str, items: tuple[str, ...]) -> None:
    try:
        s.out.write(await status_line(s, name, items))
    except StoreError:
        pass  # RFC 5819 §2: a folder that cannot be opened is listed without STATUS
