"""A userspace link shaper: a TCP proxy adding delay and jitter and cutting connections at random.

Run in the router namespace where the kernel has no ``tc netem``::

    python tests/netns/shaper.py --listen 10.19.2.1:7708 --to 10.19.1.2:7707 \
        --delay 0.05 --jitter 0.01 --cut-mean 10 --seed 1

Each accepted connection is joined to a new one to ``--to``. Every chunk read is written out
``delay`` ± ``jitter`` seconds later, in order (a chunk never overtakes the one before it, as on
a real link). Each connection lives an exponentially distributed time of mean ``--cut-mean``
seconds and is then cut (both sockets closed, what is in flight lost), so cuts come every
``cut-mean`` seconds on average per connection. It prints ``shaper ready`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time


async def pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    jitter: float,
    rng: random.Random,
) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    last = 0.0

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            last = max(last, time.monotonic() + delay + rng.uniform(-jitter, jitter))
            queue.put_nowait((last, data))
        queue.put_nowait((0.0, b""))
        await sender
    finally:
        sender.cancel()


async def serve(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    host, port = args.to.rsplit(":", 1)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        life = rng.expovariate(1.0 / args.cut_mean) if args.cut_mean > 0 else None
        both = asyncio.gather(
            pipe(client_r, server_w, args.delay, args.jitter, rng),
            pipe(server_r, client_w, args.delay, args.jitter, rng),
        )
        with contextlib.suppress(Exception):
            async with asyncio.timeout(life):
                await both
        both.cancel()
        for w in (client_w, server_w):
            w.transport.abort()  # a cut: no goodbye, what is in flight is lost

    lhost, lport = args.listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, lhost, int(lport))
    print("shaper ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--to", required=True, metavar="HOST:PORT")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds each way")
    parser.add_argument("--jitter", type=float, default=0.01, help="± seconds")
    parser.add_argument("--cut-mean", type=float, default=10.0, help="mean connection life (s)")
    parser.add_argument("--seed", type=int, default=None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
