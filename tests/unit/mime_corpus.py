"""Shared access to the MIME corpus in tests/data/mime and its Dovecot golden answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "data" / "mime"
NAMES = sorted(p.stem for p in CORPUS.glob("*.eml"))


def wire(name: str) -> bytes:
    """The corpus message in wire form (CRLF line ends), as the store hands it out."""
    return re.sub(rb"\r?\n", b"\r\n", (CORPUS / f"{name}.eml").read_bytes())


def raw(name: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes()


def golden(name: str) -> dict[str, bytes]:
    data = json.loads((CORPUS / f"{name}.golden").read_text())
    return {key: value.encode("latin-1") for key, value in data.items()}
