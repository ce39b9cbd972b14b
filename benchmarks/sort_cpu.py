"""CPU of SORT and THREAD after new mail, in process: ``python -m benchmarks.sort_cpu [N]``.

The imap-sort scenario's folder (N ``thread`` messages, 10,000 by default, made by the same
seeded factory) as SortItems; then, ``REPEATS`` times, one reply arrives (as in the scenario)
and each command's answer is worked out afresh (what a server without kept answers does) and
by updating the kept one (``sort_kept``, ``thread_kept``). Prints one JSON line: the median
``time.process_time`` of each, in milliseconds, so a shared, noisy machine still compares.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time

from benchmarks.seed import BASE_TIME, MessageFactory
from mailsrv.imap.sort import SortItem, SortKey, sort_item, sort_messages
from mailsrv.imap.sort_kept import KeptOrder
from mailsrv.imap.sort_record import from_header
from mailsrv.imap.thread import ordered_subject, references, refs, thread_response
from mailsrv.imap.thread_kept import KeptOrderedSubject, KeptRefs, KeptThreads

REPEATS = 15
_REPLY = (
    "From: Bob <bob@example.org>\r\nSubject: Re: news {n}\r\nMessage-ID: <new{n}@bench.test>\r\n"
    "In-Reply-To: <1.sort.1700000037@example.org>\r\n"
    "References: <1.sort.1700000037@example.org>\r\n\r\n"
)


def _items(count: int) -> list[SortItem]:
    factory = MessageFactory(random.Random("1:sort:thread"))  # the scenario's (--seed 1)
    out = []
    for i in range(count):
        when = BASE_TIME + i * 37
        data = factory.message(i, "sort", when, "thread")
        out.append(sort_item(i + 1, when, len(data), from_header(data.split(b"\r\n\r\n")[0])))
    return out


def main(count: int) -> dict[str, float]:
    items = _items(count)
    criteria = {"SORT DATE": (SortKey("DATE"),), "SORT SUBJECT": (SortKey("SUBJECT"),)}
    seq_of = {m.uid: m.uid for m in items}
    orders = {name: KeptOrder(items, keys, seq_of) for name, keys in criteria.items()}
    algorithms = {
        "REFERENCES": (references, KeptThreads(items, None)),
        "REFS": (refs, KeptRefs(items, None)),
        "ORDEREDSUBJECT": (ordered_subject, KeptOrderedSubject(items, None)),
    }
    times: dict[str, list[float]] = {}

    def took(name: str, start: float) -> None:
        times.setdefault(name, []).append((time.process_time() - start) * 1000)

    for n in range(REPEATS):
        new = items[-1].uid + 1
        mail = from_header(_REPLY.format(n=n).encode())
        items.append(sort_item(new, BASE_TIME + new * 37, 200, mail))
        for name, keys in criteria.items():
            start = time.process_time()
            sort_messages(items, keys)
            took(f"{name} afresh", start)
            start = time.process_time()
            orders[name].update(items[-1:], set(), {new: new}, renumbered=False)
            took(f"{name} updated", start)
        for name, (afresh, kept) in algorithms.items():
            start = time.process_time()
            fresh = thread_response(afresh(items))
            took(f"THREAD {name} afresh", start)
            start = time.process_time()
            kept.update(items[-1:], (), None)
            updated = kept.answer()
            took(f"THREAD {name} updated", start)
            if updated != fresh:
                raise SystemExit(f"the updated THREAD {name} answer differs from the fresh one")
    return {name: round(statistics.median(v), 3) for name, v in times.items()}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
