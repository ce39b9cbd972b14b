"""Logs for machines: ``--log-format json`` writes one JSON object per line.

    {"time": "2026-12-03T08:01:02.345Z", "level": "INFO", "protocol": "imap",
     "session": "imap-7", "user": "ann", "event": "mailsrv.imap.connection:_autologout",
     "message": "imap-7: autologout after 1800 s without a command"}

``session`` is the id a session's log lines start with (``imap-7: ...``), ``user`` who is logged
in on it (looked up among the live sessions, when the server is running), ``protocol`` the
protocol whose logger wrote it (``mailsrv.imap`` -> ``imap``; None for the server as a whole),
``event`` where the line comes from (module and function, for grouping). Exceptions add
``exception`` with the traceback. No password reaches a log line in either format: mailsrv never
logs credentials, and transcripts, which see them, redact them before anything is written.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

from mailsrv.context import SessionInfo

_SESSION = re.compile(r"((?:pop3|imap|smtp|lmtp|http)-\d+): ")

#: Finds a live session by id (``ServerContext.sessions.live.get``), once a server runs.
SessionLookup = Callable[[str], SessionInfo | None]


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookup: SessionLookup | None = None

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        seconds = record.created
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        out: dict[str, object] = {
            "time": f"{stamp}.{int(seconds % 1 * 1000):03d}Z",
            "level": record.levelname,
            "protocol": _protocol(record.name),
            "session": None,
            "user": None,
            "event": f"{record.name}:{record.funcName}",
            "message": message,
        }
        m = _SESSION.match(message)
        if m is not None:
            out["session"] = m.group(1)
            info = self.lookup(m.group(1)) if self.lookup is not None else None
            if info is not None:
                out["user"] = info.user
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


_PROTOCOLS = frozenset({"pop3", "imap", "smtp", "lmtp", "web"})


def _protocol(logger: str) -> str | None:
    parts = logger.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "mailsrv" and parts[1] in _PROTOCOLS else None


def install(level: str, log_format: str) -> JsonFormatter | None:
    """Configure the root logger on stderr; the JSON formatter when asked (to hand it the
    session lookup once the server runs)."""
    handler = logging.StreamHandler()
    formatter: JsonFormatter | None = None
    if log_format == "json":
        formatter = JsonFormatter()
        handler.setFormatter(formatter)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    return formatter
