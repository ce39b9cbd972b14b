"""The header values SEARCH compares (RFC 9051 §6.4.4), and the per-mailbox cache of them.

``field_values`` gives the decoded, folded values of one field (or, for ``SENT``, the Date
value SENTBEFORE/SENTON/SENTSINCE use); ``HeaderIndex`` keeps them between searches.
``search_keys.SearchContext`` carries an index, ``search_match`` reads through it.
"""

from __future__ import annotations

from collections.abc import Callable

from mailsrv.message.addresses import address_text
from mailsrv.message.encoded_words import decode_header
from mailsrv.message.headers import HeaderField
from mailsrv.message.text import fold

#: How many messages' decoded header values a HeaderIndex keeps.
HEADER_INDEX_SIZE = 20_000
#: The pseudo field name of the Date value SENT* keys use.
SENT = "\0SENT"
#: What an address field's pseudo name starts with (see ``address_field``).
_ADDRESSES = "\0ADDRESSES "


def address_field(name: str) -> str:
    """The pseudo field name of field ``name``'s addresses in their normal form (the values
    FROM/TO/CC/BCC compare): ``Name <mailbox@host>``, groups as ``group: ...;``."""
    return _ADDRESSES + name.upper()


class HeaderIndex:
    """Decoded, folded header values per UID and field name, kept between searches.

    A session keeps one per selected mailbox (the messages of one UIDVALIDITY never change)
    so that repeated SUBJECT/FROM searches decode each header once, and need not read the
    message again at all: ``known`` tells the caller when every wanted field is at hand.
    Only the fields searches asked for are kept; the oldest messages go first when full.
    """

    def __init__(self, size: int = HEADER_INDEX_SIZE) -> None:
        self.size = size
        self._entries: dict[int, dict[str, list[str]]] = {}

    def known(self, uid: int, names: frozenset[str]) -> bool:
        """True when the values of all ``names`` of message ``uid`` are kept."""
        entry = self._entries.get(uid)
        return entry is not None and names <= entry.keys()

    def values(
        self, uid: int, name: str, fields: Callable[[], tuple[HeaderField, ...]]
    ) -> list[str]:
        """The kept values of ``name`` (upper case, or ``SENT``), computed from ``fields``."""
        entry = self._entries.get(uid)
        if entry is None:
            entry = self._entries[uid] = {}
            if len(self._entries) > self.size:
                del self._entries[next(iter(self._entries))]
        found = entry.get(name)
        if found is None:
            found = entry[name] = field_values(fields(), name)
        return found

    def forget(self, uid: int) -> None:
        self._entries.pop(uid, None)


def field_values(fields: tuple[HeaderField, ...], name: str) -> list[str]:
    """The folded, decoded values of the fields called ``name`` (upper case), in order;
    for ``SENT`` the first Date value, decoded but not folded."""
    if name == SENT:
        for f in fields:
            if f.name.lower() == b"date":
                return [decode_header(f.value)]
        return []
    if name.startswith(_ADDRESSES):
        return [
            fold(decode_header(address_text(f.value)))
            for f in fields
            if f.name.upper() == name[len(_ADDRESSES) :].encode("latin-1")
        ]
    if not name.isascii():
        return [
            fold(decode_header(f.value)) for f in fields if f.name.decode("latin-1").upper() == name
        ]
    wanted = name.encode("ascii")
    return [
        fold(decode_header(f.value))
        for f in fields
        if (f.name.upper() == wanted if f.name.isascii() else _upper(f.name) == name)
    ]


def _upper(name: bytes) -> str:
    return name.decode("latin-1").upper()
