"""``FolderEvents``: what inotify said about one folder since its last re-scan, and whether this
process's own index of the folder already accounts for all of it.

Our own deliveries, flag renames and expunges raise inotify events too. Re-scanning the folder
for each of them would list new/ and cur/ once per delivery (while the folder's directories are
fresh, the three-stat check cannot vouch for them), so the watcher first asks
``explained_by(index)`` with the folder's lock held, after our change is done: a file that
appeared is in the index under that name, a file that went is not, the uidlist is the one we
wrote. Anything else (a name we do not know, a directory event, an overflow) re-scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailsrv.store import filenames, inotify
from mailsrv.store.folder import FolderIndex

#: Entry events remembered per folder; past this many a re-scan is cheaper than the checks.
MAX_ENTRIES = 256
_ARRIVED = inotify.IN_CREATE | inotify.IN_MOVED_TO
_LEFT = inotify.IN_DELETE | inotify.IN_MOVED_FROM


@dataclass(slots=True)
class FolderEvents:
    """The events of one folder waiting for the next look."""

    #: Re-scan whatever the index says (an event we cannot check against it).
    forced: bool = False
    #: The folder's ``dovecot-uidlist`` was replaced or written.
    uidlist: bool = False
    #: The last event bits of each file (``"new"`` or ``"cur"``, name) that arrived or left.
    entries: dict[tuple[str, str], int] = field(default_factory=dict)

    def force(self) -> None:
        self.forced = True
        self.entries.clear()

    def entry(self, sub: str, name: str, mask: int) -> None:
        if self.forced:
            return
        if mask & inotify.IN_ISDIR or not mask & (_ARRIVED | _LEFT):
            self.force()  # a directory, or a file written in place: nothing to compare
        elif len(self.entries) >= MAX_ENTRIES:
            self.force()
        else:
            self.entries[(sub, name)] = mask  # a file that came and went within a burst: went

    def explained_by(self, idx: FolderIndex) -> bool:
        """Whether ``idx`` already shows every change these events report (caller holds its
        lock, so a change of ours that raised them is complete)."""
        if self.forced or idx.dead or not idx.loaded:
            return False
        if self.uidlist and idx.uidlist_changed():
            return False
        for (sub, name), mask in self.entries.items():
            known = idx.by_base.get(filenames.base_of(name))
            present = known is not None and known.sub == sub and known.fname == name
            if present != bool(mask & _ARRIVED):
                return False
        return True
