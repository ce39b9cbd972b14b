"""The web console and REST API (aiohttp on the server's loop): ``app.py`` serves the pages and
``/api/v1`` (``api*.py``), ``events.py`` streams store events and transcripts, ``messages.py``
shows mail through ``mailsrv.message``, ``maildir_view.py`` the files underneath."""
