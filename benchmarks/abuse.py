"""Issue 17's two timed targets: an INVENTORY flood, and a stranger flooding fresh room ids.

The target node b (a full daemon, with a- b -c around it for a DM through b)
runs in this process; the flooder runs in a child process with its own event
loop, on a real link to b, sending as fast as b's link takes it.

1. INVENTORY flood (30 s; 10 s with --quick): b holds a 20,000-entry room log; the
   flooder asks for all of it again and again. Measured: ``status`` latency
   (p99, max) sampled every 100 ms during the flood, and a DM a -> b -> c sent
   every second (its latency, p99 and max).
2. Room-id flood (60 s; 15 s with --quick): NOTE envelopes to fresh room ids.
   Measured: growth of b's database (file + WAL) against the stranger pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack

from benchmarks.common import Row
from mesh.storage.roomlog import RoomLogLimits
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity
from sim.hostile import HostileLink, befriend, linked, start_daemon


def _flood(address: str, kind: str, room: bytes, seconds: float) -> None:
    asyncio.run(_flood_async(address, kind, room, seconds))


async def _flood_async(address: str, kind: str, room: bytes, seconds: float) -> None:
    me = Identity.generate("flooder")
    link = HostileLink(me)
    await link.open(address)
    end = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < end and not link.closed:
        batch = []
        for _ in range(50):
            seq += 1
            if kind == "inventory":
                payload = msgpack.packb({room: {}})
                env = Envelope.create(
                    me,
                    EnvelopeType.INVENTORY,
                    timestamp_ms=int(time.time() * 1000),
                    seq=seq,
                    payload=payload,
                    hop_limit=1,
                )
            else:
                env = Envelope.create(
                    me,
                    EnvelopeType.NOTE,
                    dest_kind=DestKind.ROOM,
                    dest=os.urandom(32),
                    timestamp_ms=int(time.time() * 1000),
                    seq=1,
                    payload=os.urandom(200),
                )
            batch.append(env.encode())
        await link.send(*batch)
        link.received.clear()
        await asyncio.sleep(0.0025)  # ~20,000 frames/s: the default link rate
    await link.close()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def _inventory_flood(root: Path, seconds: float) -> dict[str, Any]:
    b = await start_daemon(root, "b")
    a = await start_daemon(root, "a", dial=[b.node.address or ""])
    c = await start_daemon(root, "c", dial=[b.node.address or ""])
    try:
        assert b.node.roomlog is not None
        writer, room = Identity.generate("w"), os.urandom(32)
        now = time.time()
        for seq in range(1, 20_001):
            env = Envelope.create(
                writer,
                EnvelopeType.NOTE,
                dest_kind=DestKind.ROOM,
                dest=room,
                timestamp_ms=int(now * 1000),
                seq=seq,
                payload=os.urandom(300),
            )
            b.node.roomlog.keep(env, now)
        while not (linked(b, a) and linked(b, c)):
            await asyncio.sleep(0.05)
        await befriend(a, c)
        a.chat.send_direct(c.node.identity.peer_id, "warm-up")
        await asyncio.sleep(1.0)
        proc = multiprocessing.get_context("spawn").Process(
            target=_flood, args=(b.node.address, "inventory", room, seconds)
        )
        proc.start()
        await asyncio.sleep(1.0)  # the flooder's handshake
        status_ms: list[float] = []
        dm_ms: list[float] = []
        sent: dict[str, float] = {}
        arrived: dict[str, float] = {}
        c.chat.listeners.append(
            lambda kind, data: (
                arrived.setdefault(data["text"], time.perf_counter()) if kind == "message" else None
            )
        )
        end = time.monotonic() + seconds - 1.0
        n = 0
        while time.monotonic() < end:
            due = time.perf_counter() + 0.1
            await asyncio.sleep(0.1)
            await b._status({})
            status_ms.append((time.perf_counter() - due) * 1000)
            n += 1
            if n % 10 == 0:
                text = f"dm {n}"
                sent[text] = time.perf_counter()
                a.chat.send_direct(c.node.identity.peer_id, text)
        await asyncio.sleep(2.0)
        proc.join(10)
        for text, t in sent.items():
            dm_ms.append((arrived.get(text, float("inf")) - t) * 1000)
        counters = b.node.router.counters
        return {
            "status_p99_ms": round(_pct(status_ms, 0.99), 1),
            "status_max_ms": round(max(status_ms), 1),
            "dm_p99_ms": round(_pct(dm_ms, 0.99), 1),
            "dm_max_ms": round(max(dm_ms), 1),
            "dms": len(dm_ms),
            "loop_lag_ms": b.node.status()["loop_lag_ms"],
            "inventories_received": counters.get("received", 0),
            "inventory_coalesced": counters.get("inventory_coalesced", 0),
            "roomlog_sent": counters.get("roomlog_sent", 0),
        }
    finally:
        for d in (c, a, b):
            await d.stop()


async def _room_flood(root: Path, seconds: float) -> dict[str, Any]:
    b = await start_daemon(root, "b")
    try:
        assert b.node.roomlog is not None and b.store is not None
        path = b.home.database
        before = _db_bytes(path)
        proc = multiprocessing.get_context("spawn").Process(
            target=_flood, args=(b.node.address, "rooms", b"", seconds)
        )
        proc.start()
        while proc.is_alive():
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)
        status = b.node.status()
        return {
            "db_growth_bytes": _db_bytes(path) - before,
            "pool_bytes": RoomLogLimits().stranger_bytes,
            "kept": status["counters"].get("roomlog_kept", 0),
            "evicted": status["counters"].get("roomlog_evicted_stranger_pool", 0),
            "stranger_bytes": status["caches"]["room_log"]["stranger_bytes"],
        }
    finally:
        await b.stop()


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        inv = asyncio.run(_inventory_flood(Path(tmp) / "inv", 10.0 if quick else 30.0))
        rooms = asyncio.run(_room_flood(Path(tmp) / "rooms", 15.0 if quick else 60.0))
    rows = [
        Row(
            "abuse: status p99 during INVENTORY flood",
            inv["status_p99_ms"],
            "ms",
            target="<= 200 ms",
            passed=inv["status_max_ms"] <= 200,
            notes=f"max {inv['status_max_ms']} ms",
            extra=inv,
        ),
        Row(
            "abuse: DM through the flooded node",
            inv["dm_max_ms"],
            "ms",
            target="<= 1000 ms",
            passed=inv["dm_max_ms"] <= 1000,
            notes=f"p99 {inv['dm_p99_ms']} ms over {inv['dms']} DMs",
        ),
        Row(
            "abuse: DB growth under room-id flood",
            rooms["db_growth_bytes"] / 2**20,
            "MiB",
            target=f"<= pool ({rooms['pool_bytes'] / 2**20:.0f} MiB)",
            passed=rooms["db_growth_bytes"] <= rooms["pool_bytes"],
            extra=rooms,
        ),
    ]
    return rows, {"inventory_flood": inv, "room_flood": rooms}


if __name__ == "__main__":
    import json

    result = run(quick=os.environ.get("QUICK") == "1")
    print(json.dumps(result[1], indent=2))
