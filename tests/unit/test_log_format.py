"""The JSON log formatter on its own."""

from __future__ import annotations

import json
import logging

from mailsrv.context import SessionInfo
from mailsrv.log_format import JsonFormatter


def record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None, func="handle")


def test_a_session_line_names_session_protocol_and_user() -> None:
    f = JsonFormatter()
    f.lookup = {"pop3-4": SessionInfo("pop3-4", "pop3", "127.0.0.1", 110, user="bob")}.get
    out = json.loads(f.format(record("mailsrv.pop3", "%s: maildrop locked", "pop3-4")))
    assert out["session"] == "pop3-4" and out["user"] == "bob" and out["protocol"] == "pop3"
    assert out["level"] == "WARNING" and out["event"] == "mailsrv.pop3:handle"
    assert out["message"] == "pop3-4: maildrop locked"


def test_a_server_line_has_no_session() -> None:
    out = json.loads(JsonFormatter().format(record("mailsrv.cli", "open-files limit: %d", 1024)))
    assert out["session"] is None and out["user"] is None and out["protocol"] is None
    assert out["message"] == "open-files limit: 1024"


def test_an_exception_is_one_line_too() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("mailsrv.imap", "imap-1: failed")
        rec.exc_info = sys.exc_info()
    text = JsonFormatter().format(rec)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exception"]
