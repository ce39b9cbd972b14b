"""SMTP ingress under its old name: the code lives in the ``mailsrv.smtp`` package.

``from mailsrv.smtp_ingress import start_smtp`` (and the other names below) keeps working, and
``mailsrv.smtp_ingress`` stays the module the CLI and tests look for to know SMTP is available.
"""

from __future__ import annotations

from mailsrv.smtp.handler import MAX_RECIPIENTS, IngressEnvelope, IngressHandler
from mailsrv.smtp.ingress import CLOSE_GRACE, MODES, SmtpListener, start_smtp
from mailsrv.smtp.session import IDENT, MAX_DATA_LINE, IngressSMTP, log

__all__ = [
    "CLOSE_GRACE",
    "IDENT",
    "MAX_DATA_LINE",
    "MAX_RECIPIENTS",
    "MODES",
    "IngressEnvelope",
    "IngressHandler",
    "IngressSMTP",
    "SmtpListener",
    "log",
    "start_smtp",
]
