"""mailsrv: POP3 + IMAP + SMTP on one asyncio loop and one Maildir store."""

from mailsrv.config import Config, Limits, load_config
from mailsrv.server import MailServer, Ports

__all__ = ["Config", "Limits", "MailServer", "Ports", "load_config"]
__version__ = "0.1.0"
