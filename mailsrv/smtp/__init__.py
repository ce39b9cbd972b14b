"""SMTP ingress (mailsrv.smtp): aiosmtpd's ``SMTP`` protocol on our loop, delivering into the Store.

Three modes share one protocol class:

- ``smtp`` (25): mail for local users; STARTTLS offered, AUTH optional.
- ``submission`` (587, RFC 6409): AUTH PLAIN/LOGIN required before MAIL (530 otherwise).
- ``smtps`` (465, RFC 8314): the same as submission, over implicit TLS.

Plaintext AUTH is offered only where ``Authenticator.plaintext_allowed`` says so (TLS, loopback,
or the config allows it). The handler accepts a recipient when its domain is local (localhost,
``server_name``, ``hostnames``, or anything in dev mode) and its local part is a user (any
valid name in dev mode, a catch-all); everything else is refused: mailsrv never relays.

The parts: ``handler`` (recipients, ``Received:``, delivery into the Store), ``session`` (the
protocol: auth, tracing, fault hooks, limits) and ``ingress`` (``start_smtp`` and the listener).
``lmtp`` serves LMTP (RFC 2033) to an MTA in front, on a port and a UNIX socket, through the same
two classes: one reply per recipient after DATA.
"""
