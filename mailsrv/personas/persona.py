"""What a persona is, and how it turns mailsrv's capability list into the persona's.

mailsrv computes its own CAPABILITY list for a connection (``mailsrv.imap.responses``); a
persona filters it. ``documented_before`` / ``documented_after`` are the real server's lists,
word for word. Each documented name is advertised when mailsrv has it (``APPENDLIMIT`` with
mailsrv's real value), when ``renames`` maps it to one mailsrv has (Gmail's ``LITERAL-`` is
mailsrv's ``LITERAL+`` with its 4096-octet cap), or when it is one of ``extensions`` (what mailsrv
implements for this persona only, such as ``X-GM-EXT-1``); any other documented name is left out,
never promised. Names that describe the connection rather than the server (``STARTTLS``,
``LOGINDISABLED``) pass through wherever the persona does not place them itself.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mailsrv.config import Config

#: Capability names that describe this connection (TLS offered, plaintext refused), not the
#: server: a persona keeps them even where its documented list (seen over TLS) lacks them.
CONNECTION_CAPABILITIES = ("STARTTLS", "LOGINDISABLED")
#: Capabilities mailsrv implements only for the personas that list them in ``extensions``:
#: every other persona, the default one included, refuses their commands.
PERSONA_EXTENSIONS = frozenset({"X-GM-EXT-1"})
#: RFC 6154 §2 and RFC 8457 (\\Important) folder attributes.
SPECIAL_USE_ATTRIBUTES = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash", "\\Important"}
)
#: RFC 7888 §4: a LITERAL- server takes non-synchronizing literals up to 4096 octets.
LITERAL_MINUS_MAX = 4096


@dataclass(frozen=True, slots=True)
class Source:
    """One difference from mailsrv's defaults and where the persona's value comes from."""

    what: str  # "capabilities after login"
    where: str  # a documentation URL or an RFC


@dataclass(frozen=True, slots=True)
class Persona:
    """A server mailsrv can present itself as (see the module docstring)."""

    name: str
    title: str
    #: The greeting's text after ``* OK``; ``{peer}``, ``{token}`` (a per-session word) and
    #: ``{host_b64}`` (the server name as Exchange encodes it) are filled in.
    greeting: str = "mailsrv ready."
    #: The greeting carries ``[CAPABILITY ...]`` (RFC 9051 §7.1); Gmail's and GreenMail's do not.
    greeting_capability: bool = True
    #: How a successful login tells the new capabilities: a ``[CAPABILITY ...]`` response code,
    #: an untagged ``* CAPABILITY`` line before the OK (Gmail), or not at all (Exchange).
    login_capability: Literal["code", "untagged", "none"] = "code"
    #: The login OK's text; ``{user}`` is the user name.
    login_text: str = "Logged in"
    #: The real server's CAPABILITY lists, in its order; None: mailsrv's own, unfiltered.
    documented_before: tuple[str, ...] | None = None
    documented_after: tuple[str, ...] | None = None
    #: The persona's name for a capability -> mailsrv's name for it.
    renames: Mapping[str, str] = field(default_factory=dict)
    #: Capabilities mailsrv implements only while presenting this persona.
    extensions: frozenset[str] = frozenset()
    #: The ID answer's fields (RFC 2971 §3.3); None answers ``* ID NIL``.
    id_fields: tuple[tuple[str, str], ...] | None = None
    #: The special-use folders a new user gets (RFC 6154 attribute -> folder name); None: the
    #: store's defaults (Sent, Drafts, Trash, Junk, Archive).
    special_folders: Mapping[str, str] | None = None
    #: LIST shows the special-use attributes (RFC 6154) of folders; a plain RFC 3501 server has
    #: none. ``\\HasChildren`` and ``\\NonExistent`` follow CHILDREN and LIST-EXTENDED.
    list_special_use: bool = True
    #: Parents listed as ``\\Noselect`` folders that exist (Gmail's ``[Gmail]``), not as
    #: ``\\NonExistent`` ones.
    noselect_folders: frozenset[str] = frozenset()
    #: Every message delivered or appended into a folder (but Junk and Trash) is also put in
    #: the ``\\All`` folder, as Gmail's All Mail holds every message.
    all_mail: bool = False
    #: The largest message the server takes (APPEND, SMTP); mailsrv uses the smaller of this and
    #: ``limits.message_size``.
    message_size: int | None = None
    #: Where each difference comes from (``mailsrv personas`` prints them).
    sources: tuple[Source, ...] = ()
    #: The compared forms (``_key``) of both lists, made once: ``offers`` runs per command.
    _documented: frozenset[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        before, after = self.documented_before, self.documented_after
        keys = None if before is None or after is None else frozenset(map(_key, (*before, *after)))
        object.__setattr__(self, "_documented", keys)

    def capability_list(self, ours: list[str], *, authenticated: bool) -> list[str]:
        """The persona's CAPABILITY list for a connection where mailsrv's own is ``ours``."""
        documented = self.documented_after if authenticated else self.documented_before
        if documented is None:
            return list(ours)
        have = {_key(c): c for c in ours}
        out: list[str] = []
        for name in documented:
            token = self._resolve(name, have)
            if token is not None and token not in out:
                out.append(token)
        out += [c for c in ours if c in CONNECTION_CAPABILITIES and c not in out]
        return out

    def _resolve(self, name: str, have: Mapping[str, str]) -> str | None:
        if name in self.extensions:
            return name
        ours = have.get(_key(self.renames.get(name, name)))
        if ours is None:
            return None
        if name in self.renames:
            return name
        return ours  # APPENDLIMIT carries mailsrv's real limit

    def offers(self, capability: str) -> bool:
        """The persona advertises ``capability`` in one of its lists (or has no lists, and
        ``capability`` is mailsrv's own)."""
        if capability in PERSONA_EXTENSIONS:
            return capability in self.extensions
        return self._documented is None or _key(capability) in self._documented

    def offers_family(self, family: str) -> bool:
        """The persona's lists name some ``family=...`` capability (``THREAD=REFERENCES``)."""
        if self.documented_after is None:
            return False
        prefix = family.upper() + "="
        return any(n.upper().startswith(prefix) for n in self.documented_after)

    @property
    def max_nonsync_literal(self) -> int | None:
        """The largest non-synchronizing literal accepted: None (LITERAL+), 4096 (LITERAL-) or
        0 (a server with neither: ``{n+}`` is a syntax error, RFC 3501 §9)."""
        if self.documented_after is None or (
            self.offers("LITERAL+") and not self.offers("LITERAL-")
        ):
            return None
        return LITERAL_MINUS_MAX if self.offers("LITERAL-") else 0

    def list_attributes(self, name: str, attrs: list[str]) -> list[str]:
        """A LIST line's attributes as this persona shows them (mailsrv's ``attrs`` filtered)."""
        if self.documented_after is None:
            return attrs
        children = self.offers("CHILDREN") or self.offers("LIST-EXTENDED")
        nonexistent = self.offers("LIST-EXTENDED") and name not in self.noselect_folders
        out = []
        for attr in attrs:
            if attr in ("\\HasChildren", "\\HasNoChildren") and not children:
                continue
            if attr == "\\NonExistent" and not nonexistent:
                continue
            if attr in SPECIAL_USE_ATTRIBUTES and not self.list_special_use:
                continue
            out.append(attr)
        if "\\NonExistent" in attrs and "\\Noselect" not in out and not nonexistent:
            out.insert(0, "\\Noselect")
        return out

    def greeting_text(self, *, peer: str, session: str, server_name: str) -> str:
        """The greeting's text (after ``* OK`` and any ``[CAPABILITY ...]``)."""
        token = hashlib.sha256(session.encode()).hexdigest()[:16]
        host_b64 = base64.b64encode(server_name.upper().encode("utf-16-le")).decode()
        return self.greeting.format(peer=peer, token=token, host_b64=host_b64)

    def configure_limit(self, configured: int) -> int:
        """The message size limit: the persona's, where it is smaller than ``configured``."""
        return configured if self.message_size is None else min(configured, self.message_size)

    def configure(self, config: Config) -> Config:
        """``config`` with this persona's message size limit, where it is the smaller."""
        limits = config.limits
        size = self.configure_limit(limits.message_size)
        if size == limits.message_size:
            return config
        return dataclasses.replace(config, limits=dataclasses.replace(limits, message_size=size))


def _key(capability: str) -> str:
    """Capabilities compare without case; ``APPENDLIMIT=N`` is ``APPENDLIMIT`` whatever N is."""
    upper = capability.upper()
    return "APPENDLIMIT" if upper.startswith("APPENDLIMIT") else upper
