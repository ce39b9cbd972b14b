"""idle-workers: many idlers on one INBOX spread over ``--workers N``, three kinds of delivery.

The idlers connect as any client does, so the kernel decides which worker accepts each; the
spread is read back from /proc (which worker process owns each connection's socket). Then
each kind of delivery is made ``Sizes.idle_workers_deliveries`` times, with a random pause
before the next, and the delay from hand-over to ``* n EXISTS`` is taken at every idler:

- ``SMTP``: to the server, so it lands in the one worker that accepted the SMTP connection and
  every other worker must learn of it from the Maildir (clock: final ``.`` sent);
- ``mailsrv deliver``: another process delivering with the store the CLI uses
  (``cross_process_idle.StoreDeliverer``; clock: when that process began the delivery);
- ``Maildir drop``: this process writes into tmp/ and renames into new/, as an MTA's Maildir
  delivery does (clock: the rename done).

Dovecot has no SMTP listener here and no ``mailsrv deliver``: it gets the drop kind only.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable

from benchmarks.common import (
    Bench,
    Server,
    maildir_drop,
    median,
    notice_message,
    percentile,
    running,
    smtp_deliver,
)
from benchmarks.cross_process_idle import StoreDeliverer
from benchmarks.scenarios import Results
from benchmarks.scenarios_idle import Delivery, IdleRun, idle_run, lag_rows, spread_text
from benchmarks.servers import MailsrvProcess
from benchmarks.table import Series

USER = "idle"
#: The longest random pause after a delivery reached everyone: keeps the deliveries out of
#: step with any timer the servers run (Dovecot's idle check, mailsrv's watch resync).
MAX_PAUSE = 0.2
SMTP, CLI, DROP = "SMTP", "mailsrv deliver", "Maildir drop"


def _by_smtp(server: Server, seq: int) -> float:
    return smtp_deliver(server.ports["smtp"], USER, notice_message(seq))


def _by_store(deliverer: StoreDeliverer, seq: int) -> float:
    deliverer.send(notice_message(seq))
    return deliverer.started()  # the idlers' arrival times are taken in the load processes


def _by_drop(server: Server, seq: int) -> float:
    return maildir_drop(server.maildir, USER, notice_message(seq), seq)


def _kind_rows(label: str, run: IdleRun, first: int, count: int, idlers: int) -> Results:
    """The rows of one delivery kind: deliveries ``first`` .. ``first + count - 1``."""
    mine = run.latencies[first : first + count]
    lat = [1000 * x for per_delivery in mine for x in per_delivery]
    missed = sum(idlers - len(per_delivery) for per_delivery in mine)
    note = f"[{missed} missed]" if missed else ""
    cpu: list[float] = []
    if len(run.cpu_marks) > first + count:
        cpu = [run.cpu_marks[first + count] - run.cpu_marks[first]]
    worst = max(lat) if lat else float("nan")
    target_p50 = "≤20" if label == SMTP else ""
    return {
        (f"{label} → EXISTS at every idler p50", "ms", target_p50): Series(
            [median(lat)], cpu, note=note
        ),
        (f"{label} → EXISTS at every idler p99", "ms", ""): Series(
            [percentile(lat, 0.99)], note=note
        ),
        (f"{label} → EXISTS at every idler max", "ms", "≤100"): Series([worst], note=note),
    } | lag_rows(run, label, range(first, first + count))


def idle_workers(bench: Bench, kind: str) -> Results:
    idlers = bench.sizes.idle_workers_idlers
    repeats = bench.sizes.idle_workers_deliveries
    rng = random.Random(bench.seed)
    with (
        running(bench, kind, None, [USER], imap_clients=idlers) as server,
        contextlib.ExitStack() as stack,
    ):
        makers: list[tuple[str, Callable[[int], float]]] = []
        if isinstance(server, MailsrvProcess):
            deliverer = StoreDeliverer(server.maildir, USER)
            stack.callback(deliverer.close)
            makers += [
                (SMTP, functools.partial(_by_smtp, server)),
                (CLI, functools.partial(_by_store, deliverer)),
            ]
        makers.append((DROP, functools.partial(_by_drop, server)))
        deliveries: list[Delivery] = [(USER, fn) for _, fn in makers for _ in range(repeats)]
        run = idle_run(
            bench,
            server,
            [USER] * idlers,
            deliveries,
            pause=lambda: rng.uniform(0, MAX_PAUSE),
            cpu_each=True,
        )
    results: Results = {}
    if isinstance(server, MailsrvProcess):
        results[(f"{idlers} idlers on one INBOX: fewest in one worker", "conns", "")] = Series(
            [min(run.spread)], note=f"[per worker: {spread_text(run.spread)}]"
        )
    for i, (label, _) in enumerate(makers):
        results.update(_kind_rows(label, run, i * repeats, repeats, idlers))
    return results
