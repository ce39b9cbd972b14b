"""Several hosts on one Maildir root behind nginx's mail proxy.

``rendezvous`` ranks the hosts for a user (one user, one host), ``auth_http`` is nginx's
auth_http protocol as plain data (headers in, headers out), ``heartbeat`` is each host's proof
of life in the shared root, and ``routing`` picks the first live host in a user's order.
"""
