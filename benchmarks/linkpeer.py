"""Minimal link-level peers for the relay benchmarks: a source and a sink around one relay.

    python -m benchmarks.linkpeer sink   --relay ADDRESS --count N
    python -m benchmarks.linkpeer source --relay ADDRESS --dest PEERID --count N --size BYTES
                                         [--dests K]

Both speak the real link protocol (secret handshake, box-stream, frames, via
`mesh.wire.link.Link`) and nothing else, so that nearly all the CPU of a run goes to
the relay under test: the source sends envelopes it signed before the clock
starts; the sink opens the box-stream and counts CHAT frames without checking
signatures again (the relay checked them; a receiving node would too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import msgpack
from websockets.asyncio.client import connect as ws_connect

from chat.senderkey import associated_data, seal
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity, decode_peer_id
from mesh.wire.link import Link, LinkState
from mesh.wire.netkey import DEFAULT_NETWORK_KEY

WS_CHUNK = 64 * 1024


def chat_envelope(identity: Identity, dest: bytes, size: int, seq: int, now: float) -> Envelope:
    """A CHAT envelope shaped as chat.messages makes it, encoding to `size` bytes (>= ~250)."""
    conv = b"\x01" * 32
    key = b"\x02" * 32

    def build(text_len: int) -> Envelope:
        content = msgpack.packb(
            {"id": "0" * 32, "t": "x" * text_len, "ts": int(now * 1000), "s": seq}
        )
        aad = associated_data(conv, 0, seq, identity.public_key)
        payload = msgpack.packb([conv, 0, seq, seal(key, content, aad), None])
        return Envelope.create(
            identity,
            EnvelopeType.CHAT,
            dest_kind=DestKind.PEER,
            dest=dest,
            timestamp_ms=int(now * 1000),
            seq=seq,
            payload=payload,
        )

    text_len = 0
    for _ in range(6):
        env = build(text_len)
        diff = size - len(env.encode())
        if diff == 0:
            break
        text_len = max(0, text_len + diff)
    return env


async def _open_link(relay: PeerAddress, identity: Identity):  # type: ignore[no-untyped-def]
    ws = await ws_connect(
        relay.url,
        compression=None,
        max_size=None,
        max_queue=64,
        ping_interval=None,
        proxy=None,
        user_agent_header=None,
    )
    link = Link(
        network_key=DEFAULT_NETWORK_KEY,
        identity=identity,
        now=time.time(),
        remote_key=relay.peer_key,
    )
    await ws.send(link.data_to_send())
    while link.state is LinkState.HANDSHAKE:
        link.receive_data(await ws.recv(decode=False), time.time())
        out = link.data_to_send()
        if out:
            await ws.send(out)
    return ws, link


async def _heartbeat(ws, link: Link) -> None:  # type: ignore[no-untyped-def]
    """Keep the link alive: the relay closes a link it has not heard from in 45 s."""
    while True:
        await asyncio.sleep(1.0)
        link.tick(time.time())
        out = link.data_to_send()
        if out:
            await ws.send(out)


async def sink(args: argparse.Namespace) -> None:
    identity = Identity.generate("sink")
    ws, link = await _open_link(PeerAddress.parse(args.relay), identity)
    print(f"ready {identity.peer_id}", flush=True)
    beat = asyncio.create_task(_heartbeat(ws, link))
    received = 0
    t_first = t_last = None
    cpu_start = time.process_time()  # waiting costs none: this is the work of receiving
    while received < args.count:
        try:
            # the source may still be signing its envelopes: wait longer for the first
            wait = args.idle if t_first is not None else max(args.idle, 120.0)
            data = await asyncio.wait_for(ws.recv(decode=False), wait)
        except TimeoutError:
            break
        now = time.monotonic()
        for message in link.receive_data(data, time.time()):
            if len(message) > 2 and message[2] == EnvelopeType.CHAT:
                received += 1
                if t_first is None:
                    t_first = now
                t_last = now
        out = link.data_to_send()
        if out:
            await ws.send(out)
    cpu = time.process_time() - cpu_start
    print(
        json.dumps({"received": received, "t_first": t_first, "t_last": t_last, "cpu_s": cpu}),
        flush=True,
    )
    beat.cancel()
    await ws.close()


async def source(args: argparse.Namespace) -> None:
    identity = Identity.generate("source")
    now = time.time()
    if args.dests > 1:
        dests = [os.urandom(32) for _ in range(args.dests)]
    else:
        dests = [decode_peer_id(args.dest)]
    wire = [
        chat_envelope(identity, dests[i % len(dests)], args.size, i + 1, now).encode()
        for i in range(args.count)
    ]
    ws, link = await _open_link(PeerAddress.parse(args.relay), identity)

    async def drain() -> None:
        async for data in ws:
            assert isinstance(data, bytes)
            link.receive_data(data, time.time())

    reader = asyncio.create_task(drain())
    beat = asyncio.create_task(_heartbeat(ws, link))
    await asyncio.sleep(0.2)  # let the relay's announce and inventory pass
    t_start = time.monotonic()
    cpu_start = time.process_time()
    batch = max(1, (WS_CHUNK // args.size))
    for start in range(0, len(wire), batch):
        for data in wire[start : start + batch]:
            link.send(data, time.time())
        out = link.data_to_send()
        for i in range(0, len(out), WS_CHUNK):
            await ws.send(out[i : i + WS_CHUNK])
    t_end = time.monotonic()
    cpu = time.process_time() - cpu_start  # sealing and sending, the envelopes signed before
    print(
        json.dumps({"sent": len(wire), "t_start": t_start, "t_end": t_end, "cpu_s": cpu}),
        flush=True,
    )
    await asyncio.sleep(args.linger)
    reader.cancel()
    beat.cancel()
    await ws.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.linkpeer")
    parser.add_argument("mode", choices=["sink", "source"])
    parser.add_argument("--relay", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--dest", default="")
    parser.add_argument("--dests", type=int, default=1)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--linger", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(sink(args) if args.mode == "sink" else source(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
