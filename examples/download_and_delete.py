"""A download-and-delete POP3 client: fetch every message into a folder, then delete it.

python examples/download_and_delete.py --port 3110 --user alice --out ./downloaded
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
    ap.add_argument("--out", type=Path, default=Path("downloaded"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    pop = poplib.POP3(args.host, args.port)
    pop.user(args.user)
    pop.pass_(args.password)
    count, _ = pop.stat()
    for num in range(1, count + 1):
        _, lines, _ = pop.retr(num)
        (args.out / f"{num}.eml").write_bytes(b"\r\n".join(lines) + b"\r\n")
        pop.dele(num)
    pop.quit()  # the server deletes the messages now, not before
    print(f"downloaded and deleted {count} messages")


if __name__ == "__main__":
    main()
