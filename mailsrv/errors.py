"""The two ways a protocol core can fail, the same for POP3, IMAP and SMTP.

``PeerError``: the peer sent something the connection cannot go on with (a SASL line over the
limit, say); the adapter ends the connection. ``CoreMisuse``: the program drove a core wrongly
(a transition from the wrong state, a command taken before the last one was answered); it is a
bug in mailsrv, never the client's doing.
"""


class PeerError(Exception):
    """The peer is too broken to go on with: the adapter closes the connection."""


class CoreMisuse(Exception):
    """A protocol core was driven wrongly (a bug in the code driving it)."""
