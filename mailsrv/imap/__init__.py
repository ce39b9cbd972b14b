"""IMAP (RFC 9051 / RFC 3501 and extensions) on 143 (STARTTLS) and 993 (TLS).

The layers, from the socket in: ``listener.py`` accepts, ``connection.py`` is the asyncio
adapter (read, write, TLS, timeouts), ``core.py`` the sans-I/O core (``framing.py`` cuts commands
and literals, ``parser.py`` turns them into the values of ``commands.py``; the core keeps the
connection state and read mode), ``dispatch.py`` the loop from the core's events to the
handlers, which are grouped by the state they run in (``any_state.py``,
``not_authenticated.py``, ``authenticated.py``, ``selected.py``) and work on one
``session.py``. ``mailbox_view.py`` keeps a session's sequence numbers, ``change_feed.py``
brings the store's changes (IDLE included), ``server_state.py`` is what one server's sessions
share. ENVELOPE, BODYSTRUCTURE and BODY[section] are rendered from ``mailsrv.message``.
"""
