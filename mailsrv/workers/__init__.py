"""``mailsrv serve --workers N``: a supervisor, N worker processes, and what they share."""
