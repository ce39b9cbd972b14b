"""mailsrv: POP3 + IMAP + SMTP on one asyncio loop and one Maildir store."""

from mailsrv.config import Config, Limits, load_config
from mailsrv.server import MailServer, Ports
from mailsrv.version import __version__

__all__ = ["Config", "Limits", "MailServer", "Ports", "__version__", "load_config"]
