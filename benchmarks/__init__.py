"""mailsrv benchmark: ``python -m benchmarks`` (``make bench``, ``make bench-compare``).

Seeds Maildirs deterministically, starts mailsrv (and optionally Dovecot) on loopback, drives
POP3 / IMAP / SMTP load from separate processes and prints one Markdown table. See
docs/benchmarks.md for what each scenario measures.
"""
