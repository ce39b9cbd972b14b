"""The delivery paths' one call: ``Scanned.deliver`` puts a scanned message where it belongs.

Spam (at or above ``spam_threshold``) gets the ``$Junk`` keyword, as Thunderbird and other
clients use it, and goes to the user's ``\\Junk`` special-use folder instead of INBOX (a
delivery aimed at another folder stays there, keyword set). A virus, with
``virus_action = "quarantine"``, goes to ``Quarantine``; with "reject" the caller refuses the
message (``refusal``) and nothing is stored. ``$NotJunk`` is the user's: nothing here sets it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailsrv.scan.verdict import ScanResult
from mailsrv.store.base import INBOX, FolderExists, FolderInfo, Store

JUNK_KEYWORD = "$Junk"
JUNK_SPECIAL_USE = "\\Junk"
QUARANTINE = "Quarantine"


class VirusRefused(Exception):
    """The message carries a virus and ``virus_action`` is "reject": nothing was stored."""

    def __init__(self, name: str) -> None:
        super().__init__(f"virus found: {name}")
        self.name = name


@dataclass(frozen=True, slots=True)
class Delivered:
    folder: str
    uid: int


@dataclass(frozen=True, slots=True)
class Scanned:
    """A message after scanning: its bytes (scan fields on top) and what was found.

    ``result`` is None when scanning is off; ``refusal`` is the virus's name when the message
    must be refused."""

    data: bytes
    result: ScanResult | None = None
    refusal: str | None = None

    @property
    def smtp_refusal(self) -> str | None:
        """The SMTP reply refusing the message (RFC 3463 5.7.1: delivery not authorized)."""
        if self.refusal is None:
            return None
        return f"554 5.7.1 Message refused: virus found ({self.refusal})"

    async def deliver(
        self,
        store: Store,
        user: str,
        folder: str = INBOX,
        flags: Iterable[str] = (),
        actor: str | None = None,
    ) -> Delivered:
        """Store the message for ``user`` (raises ``VirusRefused`` if it must be refused)."""
        if self.refusal is not None:
            raise VirusRefused(self.refusal)
        folder, keywords = await self.placement(store, user, folder)
        uid = await store.deliver(user, self.data, folder, (*flags, *keywords), actor=actor)
        return Delivered(folder, uid)

    async def placement(
        self, store: Store, user: str, folder: str = INBOX
    ) -> tuple[str, tuple[str, ...]]:
        """Where ``deliver`` files the message for ``user`` and the keywords it adds: spam into
        the user's Junk folder (made if missing), a virus into quarantine, else ``folder``."""
        result = self.result
        if result is None:
            return folder, ()
        if result.virus is not None:
            return await _ensure(store, user, QUARANTINE, None), ()
        if not result.is_spam:
            return folder, ()
        if folder == INBOX:
            folder = await junk_folder(store, user)
        return folder, (JUNK_KEYWORD,)


async def junk_folder(store: Store, user: str) -> str:
    """The user's ``\\Junk`` special-use folder, made (as "Junk") if it has none."""
    folders = await store.list_folders(user)
    for info in folders:
        if info.special_use == JUNK_SPECIAL_USE:
            return info.name
    return await _ensure(store, user, "Junk", JUNK_SPECIAL_USE, folders)


async def _ensure(
    store: Store,
    user: str,
    name: str,
    special_use: str | None,
    folders: Iterable[FolderInfo] | None = None,
) -> str:
    """``name``, made unless it is among ``folders`` (the user's, listed here when None)."""
    if folders is None:
        folders = await store.list_folders(user)
    if not any(info.name == name for info in folders):
        try:
            await store.create_folder(user, name, special_use)
        except FolderExists:  # made meanwhile by another session
            pass
    return name
