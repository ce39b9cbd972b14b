"""File names for ``Content-Disposition`` on downloads: what a sender wrote, made safe to send.

A name comes from the mail (``filename*=``, encoded words), so it may hold CR, LF, TAB or other
control characters, which no HTTP header may carry (aiohttp refuses the whole response), and
bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE makes ``invoice\\u202efdp.exe`` look like
``invoiceexe.pdf``). Both are replaced by ``_``, so every attachment downloads under a name that
reads as it is.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

#: Bidi embeddings, overrides, isolates and marks (Unicode 15, UAX #9 §2).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Longest name offered (file systems take 255 bytes; UTF-8 may need 4 per character).
MAX_NAME = 200


def _unsafe(ch: str) -> bool:
    return ch in BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def safe_filename(name: str) -> str:
    """``name`` with control, format and bidi characters replaced by ``_``, trimmed of spaces
    and dots at the ends, cut to ``MAX_NAME`` characters; ``attachment`` when nothing is left."""
    cleaned = "".join("_" if _unsafe(ch) else ch for ch in name).strip(" .")
    return cleaned[:MAX_NAME] or "attachment"


def download_disposition(name: str) -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''...`` (RFC 6266 §4.3, RFC 8187)."""
    safe = safe_filename(name)
    ascii_name = safe.encode("ascii", "replace").decode()
    for ch in '"\\?%':
        ascii_name = ascii_name.replace(ch, "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe='')}"
