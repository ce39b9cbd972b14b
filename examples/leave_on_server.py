"""A leave-on-server POP3 client: fetch only what is new (by UIDL), never delete.

Run it twice: the second run downloads nothing, because it remembers the UIDLs it has seen.

    python examples/leave_on_server.py --port 3110 --user alice --state seen.txt
"""

from __future__ import annotations

import argparse
import poplib
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3110)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--state", type=Path, default=Path("seen-uidls.txt"))
    args = ap.parse_args()
    seen = set(args.state.read_text().split()) if args.state.exists() else set()

    pop = poplib.POP3(args.host, args.port)
    pop.user(args.user)
    pop.pass_(args.password)
    _, listing, _ = pop.uidl()
    new = 0
    for line in listing:
        num, uidl = line.decode().split()
        if uidl not in seen:
            pop.retr(int(num))
            seen.add(uidl)
            new += 1
    pop.quit()  # no DELE: everything stays on the server
    args.state.write_text("\n".join(sorted(seen)) + "\n")
    print(f"downloaded {new} new messages, {len(listing)} on the server")


if __name__ == "__main__":
    main()
