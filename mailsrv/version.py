"""The version of mailsrv (a module of its own, so protocol code can name it without importing
the whole server)."""

__version__ = "0.1.0"
