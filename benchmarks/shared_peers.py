"""Cost of the workers' shared admission table: ``python -m benchmarks.shared_peers``.

Per connection (the admission check, the open and the close) with one process's counters
(``LocalPeerCounts``) and with the shared table of ``--workers``
(``mailsrv.workers.shared_peers``), and per failed login recorded in the shared table (under its
file lock). Prints one line each, in microseconds.
"""

from __future__ import annotations

import time

from mailsrv.net.peer_state import LocalPeerCounts
from mailsrv.workers.shared_peers import SharedPeerTable

ROUNDS = 200_000


def main(rounds: int = ROUNDS) -> None:
    table = SharedPeerTable(2)
    for name, counts in (("local", LocalPeerCounts()), ("shared", table.counts(0))):
        start = time.perf_counter()
        for i in range(rounds):
            peer = f"192.0.2.{i & 255}"
            counts.count(peer)
            counts.total()
            counts.add(peer, 1)
            counts.add(peer, -1)
        per = (time.perf_counter() - start) / rounds * 1e6
        print(f"{name:>6}: {per:.2f} us per connection (check, open, close)")
    failures = table.failures()
    start = time.perf_counter()
    for i in range(rounds // 10):
        failures.record(f"198.51.100.{i & 255}", time.monotonic(), 20, 60.0)
    per = (time.perf_counter() - start) / (rounds // 10) * 1e6
    print(f"shared: {per:.2f} us per failed login recorded")
    table.close()


if __name__ == "__main__":
    main()
