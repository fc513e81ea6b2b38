"""Baseline: a plain websockets forwarder (no handshake, no crypto, no routing).

    python -m benchmarks.forwarder server
    python -m benchmarks.forwarder sink   --url ws://... --count N
    python -m benchmarks.forwarder source --url ws://... --count N --size BYTES

The server passes every message from the client on path /source to the client
on path /sink; the sink counts them. Same topology and message sizes as the
relay benchmark, separate processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

WS_CHUNK = 64 * 1024


async def server() -> None:
    sink_ready: asyncio.Future[ServerConnection] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else ""
        if path == "/sink":
            sink_ready.set_result(ws)
            await ws.wait_closed()
            return
        out = await sink_ready
        async for message in ws:
            await out.send(message)

    async with serve(
        handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None
    ) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await asyncio.Future()


async def sink(args: argparse.Namespace) -> None:
    async with connect(
        args.url + "/sink", compression=None, max_size=None, ping_interval=None
    ) as ws:
        print("ready", flush=True)
        received = 0
        t_first = t_last = None
        while received < args.count:
            try:
                await asyncio.wait_for(ws.recv(decode=False), args.idle)
            except TimeoutError:
                break
            t_last = time.monotonic()
            t_first = t_first or t_last
            received += 1
        print(json.dumps({"received": received, "t_first": t_first, "t_last": t_last}), flush=True)


async def source(args: argparse.Namespace) -> None:
    payload = bytes(args.size)
    async with connect(
        args.url + "/source", compression=None, max_size=None, ping_interval=None
    ) as ws:
        t_start = time.monotonic()
        for _ in range(args.count):
            await ws.send(payload)
        t_end = time.monotonic()
        print(json.dumps({"sent": args.count, "t_start": t_start, "t_end": t_end}), flush=True)
        await asyncio.sleep(args.linger)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.forwarder")
    parser.add_argument("mode", choices=["server", "sink", "source"])
    parser.add_argument("--url", default="")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--linger", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(
        {"server": server, "sink": sink, "source": source}[args.mode](
            *(() if args.mode == "server" else (args,))
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
