"""A real mailsrv inside your tests, with an API to add users, inject mail and assert on mailboxes.

    with ThreadedMailServer(users={"alice": "pw"}) as server:      # unittest, scripts
        app.send_welcome_mail(port=server.ports.smtp)
        [msg] = server.wait_for_messages("alice", 1)
        assert msg.subject == "Welcome"

``AsyncMailServer`` is the same server on the running loop (``async with``) with the same API as
coroutines; ``ThreadedMailServer`` hosts it on its own thread and loop behind a synchronous API.
The pytest plugin (``mailsrv.pytest_plugin``) wraps both as fixtures. Servers listen on 127.0.0.1
on ephemeral ports, keep their Maildir in a temporary directory, and share one test CA per process
(made once, so starting a server costs milliseconds).

The parts: ``api_names`` (``TEST_API``, the method names every face shares), ``options``
(``build_config`` and the test defaults), ``messages`` (``StoredMessage``), ``async_server``
(``AsyncMailServer``) and ``threaded`` (``ThreadedMailServer``).
"""

from __future__ import annotations

from mailsrv.testing.api_names import TEST_API as TEST_API
from mailsrv.testing.async_server import RECHECK_SECONDS as RECHECK_SECONDS
from mailsrv.testing.async_server import AsyncMailServer, MailTimeout
from mailsrv.testing.messages import StoredMessage
from mailsrv.testing.messages import message_bytes as message_bytes
from mailsrv.testing.options import SERVICES as SERVICES
from mailsrv.testing.options import TEST_LIMITS as TEST_LIMITS
from mailsrv.testing.options import ServerOptions as ServerOptions
from mailsrv.testing.options import build_config, process_certs_dir
from mailsrv.testing.options import config_overrides as config_overrides
from mailsrv.testing.threaded import CALL_TIMEOUT as CALL_TIMEOUT
from mailsrv.testing.threaded import ThreadedMailServer

__all__ = [
    "AsyncMailServer",
    "MailTimeout",
    "StoredMessage",
    "ThreadedMailServer",
    "build_config",
    "process_certs_dir",
]
