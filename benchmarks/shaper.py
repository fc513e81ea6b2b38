"""A userspace link shaper: a TCP proxy adding delay and jitter and cutting connections at random.

Run where the kernel has no ``tc netem`` (in a namespace every end can reach)::

    python -m benchmarks.shaper --listen 10.19.2.1:7708 --to 10.19.1.2:7707 \
        --delay 0.05 --jitter 0.01 --cut-mean 10 --seed 1

or for many links at once, each ``--link LISTEN TO DELAY`` with its own delay (jitter a fifth
of it)::

    python -m benchmarks.shaper --link 10.21.0.1:20000 10.21.0.2:7707 0.035 --link ...

Each accepted connection is joined to a new one to its link's ``TO``. Every chunk read is
written out ``delay`` ± ``jitter`` seconds later, in order (a chunk never overtakes the one
before it, as on a real link). Each connection lives an exponentially distributed time of mean
``--cut-mean`` seconds and is then cut (both sockets closed, what is in flight lost), so cuts
come every ``cut-mean`` seconds on average per connection. It prints ``shaper ready`` once every
link listens, then ``cut LISTEN UNIXTIME`` for each cut.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    listen: str
    to: str
    delay: float
    jitter: float


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


async def shape(link: Link, cut_mean: float, rng: random.Random) -> asyncio.Server:
    """Listen on `link`'s address and proxy each connection to its target, shaped."""
    host, port = link.to.rsplit(":", 1)

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        life = rng.expovariate(1.0 / cut_mean) if cut_mean > 0 else None
        both = asyncio.gather(
            pipe(client_r, server_w, link.delay, link.jitter, rng),
            pipe(server_r, client_w, link.delay, link.jitter, rng),
        )
        cut = False
        try:
            async with asyncio.timeout(life):
                await both
        except TimeoutError:
            cut = True
        except Exception:  # a reset or a closed end: the connection is over anyway
            pass
        both.cancel()
        for w in (client_w, server_w):
            w.transport.abort()  # a cut: no goodbye, what is in flight is lost
        if cut:
            print(f"cut {link.listen} {time.time():.3f}", flush=True)

    lhost, lport = link.listen.rsplit(":", 1)
    return await asyncio.start_server(handle, lhost, int(lport))


async def serve(links: list[Link], cut_mean: float, seed: int | None) -> None:
    servers = [
        await shape(link, cut_mean, random.Random(None if seed is None else f"{seed}/{i}"))
        for i, link in enumerate(links)
    ]
    print("shaper ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--listen", metavar="HOST:PORT")
    parser.add_argument("--to", metavar="HOST:PORT")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds each way")
    parser.add_argument("--jitter", type=float, default=0.01, help="± seconds")
    parser.add_argument(
        "--link",
        nargs=3,
        action="append",
        default=[],
        metavar=("LISTEN", "TO", "DELAY"),
        help="one more link, with its own delay (jitter: a fifth of it)",
    )
    parser.add_argument("--cut-mean", type=float, default=10.0, help="mean connection life (s)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    links = [Link(listen, to, float(d), float(d) / 5) for listen, to, d in args.link]
    if args.listen and args.to:
        links.insert(0, Link(args.listen, args.to, args.delay, args.jitter))
    if not links:
        parser.error("give --listen and --to, or --link at least once")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(links, args.cut_mean, args.seed))


if __name__ == "__main__":
    main()
