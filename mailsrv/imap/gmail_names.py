"""The names of Gmail's X-GM-EXT-1 FETCH items and SEARCH keys, apart from the code that
serves them, so the persona gate can recognise them without loading that code at start-up."""

from __future__ import annotations

#: The FETCH items of X-GM-EXT-1.
GMAIL_ITEMS = frozenset({"X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"})
#: Its SEARCH keys.
GMAIL_KEYS = frozenset({"X-GM-RAW", "X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"})
