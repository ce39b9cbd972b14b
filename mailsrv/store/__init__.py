"""The mail store every protocol shares: a Maildir++ tree kept as Dovecot 2.3 keeps it
(``maildir.py``, ``mailbox.py``), or an in-memory one for tests (``memory.py``), behind the
interface in ``base.py``; change events (``events.py``, ``watcher.py``) reach every session.
It knows no protocol."""
