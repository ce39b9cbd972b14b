"""Watch a mailbox with IMAP IDLE: the server pushes `* n EXISTS` the moment mail arrives.

python examples/idle_watcher.py --port 3143 --user alice [--count 1]
"""

from __future__ import annotations

import argparse
import asyncio


async def watch(host: str, port: int, user: str, password: str, count: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)

    async def command(tag: str, line: str) -> None:
        writer.write(f"{tag} {line}\r\n".encode())
        while not (await reader.readline()).startswith(tag.encode()):
            pass

    await reader.readline()  # greeting
    await command("a1", f'LOGIN "{user}" "{password}"')
    await command("a2", "SELECT INBOX")
    writer.write(b"a3 IDLE\r\n")
    await reader.readline()  # "+ idling"
    print("idling; send some mail", flush=True)
    seen = 0
    while seen < count:
        line = (await reader.readline()).decode().strip()
        if line.endswith("EXISTS"):
            seen += 1
            print("new mail:", line, flush=True)
    writer.write(b"DONE\r\n")
    await command("a4", "LOGOUT")
    writer.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3143)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--count", type=int, default=1, help="exit after this many arrivals")
    args = ap.parse_args()
    asyncio.run(watch(args.host, args.port, args.user, args.password, args.count))


if __name__ == "__main__":
    main()
