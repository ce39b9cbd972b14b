"""Scanning at delivery: SpamAssassin's spamd (the spamc protocol) and ClamAV's clamd (INSTREAM).

``settings.py`` is the ``[scan]`` config table; ``endpoints.py`` the engines' addresses (TCP or
a UNIX socket); ``spamc.py`` and ``clamd.py`` the two protocols, each a sans-I/O part (request
bytes out, reply bytes in) and a small asyncio client; ``verdict.py`` the result and the
headers it becomes in the message (``X-Spam-Status`` ... in SpamAssassin's form), which are
also what the REST API, the console and the fixture read back; ``scanner.py`` runs both engines
with bounded concurrency and a timeout and logs one line per outage; ``delivery.py`` is the one
call the delivery paths make.
"""
