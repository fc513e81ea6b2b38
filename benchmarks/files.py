"""Attachments (issue 23): a big file over two hops, a swarm of holders, resume after kill -9.

All nodes are full meshnotes nodes (benchmarks.node) on 127.0.0.1, each with
``auto_download = 0`` in its meshnotes.toml, so that every fetch starts when
the benchmark says and is timed from there to the file being kept whole
(checked against its root). Rows:

- F1: a file over two hops (a -> b -> c) against the relay's own throughput of
  64 KiB envelopes through b, measured in the same run (benchmarks.relay).
- F2: a peer linked to three holders of a file against the same peer fetching
  a file of the same size that one holder alone has (its other links idle).
- F3: b killed with SIGKILL when c holds half the file and started again: the
  chunks c received twice (the target: at most one per holder).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Cluster, Row
from benchmarks.relay import relay_run

MIB = 1024 * 1024
CHUNK = 64 * 1024


def _node(c: Cluster, name: str, peers: list[str], port: int = 0) -> Any:
    home = c.root / name
    home.mkdir(mode=0o700, exist_ok=True)
    (home / "meshnotes.toml").write_text("auto_download = 0\n")
    return c.node(name, peers, ["--listen", f"127.0.0.1:{port}"])


def _file(c: Cluster, name: str, size: int) -> Path:
    path = c.root / name
    with path.open("wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))
    return path


def _known(node: Any, file_id: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not any(f["file_id"] == file_id for f in node.call("files.list")):
        if time.monotonic() > end:
            raise RuntimeError(f"{node.name} never heard of {file_id[:12]}")
        time.sleep(0.05)


def _fetch(node: Any, file_id: str, timeout: float = 900, at: Any = None) -> float:
    """Seconds from asking `node` to fetch until it keeps the file; `at(progress)` on the way."""
    t0 = time.monotonic()
    shown = node.call("files.fetch", {"file": file_id})
    while shown["state"] != "complete":
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{node.name}: {shown}")
        if at is not None:
            at(shown)
        shown = node.call("files.fetch", {"file": file_id, "wait": 0.05 if at else 1.0})
    return time.monotonic() - t0


def _counters(node: Any) -> dict[str, int]:
    return dict(node.call("status")["counters"])


def over_two_hops(size: int, quick: bool) -> tuple[Row, dict[str, Any]]:
    with Cluster() as c:
        a = _node(c, "a", [])
        b = _node(c, "b", [a.address])
        cc = _node(c, "c", [b.address])
        a.wait_route(cc.peer_id, 30)
        envelopes = relay_run(c, b.address, 65536, 1000 if quick else 2000)
        relay_rate = envelopes["rate"] * 65536
        path = _file(c, "big.bin", size)
        sent = a.call("files.send", {"to": cc.peer_id, "path": str(path)}, timeout=600)
        _known(cc, sent["file_id"])
        seconds = _fetch(cc, sent["file_id"])
        counters = _counters(cc)
    rate = size / seconds
    row = Row(
        f"F1. {size // MIB} MB file over two hops (a -> b -> c)",
        rate / MIB,
        "MiB/s",
        relay_rate / MIB,
        "relay, 64 KiB envelopes, same run",
        rate / relay_rate if relay_rate else None,
        ">= 0.5x",
        rate >= 0.5 * relay_rate,
        notes=f"{seconds:.1f} s; relay {envelopes['received']}/{envelopes['sent']} envelopes; "
        f"duplicates {counters.get('files_chunks_duplicate', 0)}",
    )
    return row, {"seconds": seconds, "relay_envelopes": envelopes, "counters": counters}


def _room(admin: Any, members: list[Any]) -> str:
    room = admin.call("room.new", {"name": "swarm"})["room_id"]
    for m in members:
        m.call("contacts.add", {"peer": admin.peer_id, "name": None})
        admin.call("room.invite", {"room": room, "peer": m.peer_id})
    for m in [admin, *members]:
        m.call("bench.wait_member", {"room": room, "timeout": 60})
    return str(room)


def swarm(size: int) -> tuple[Row, dict[str, Any]]:
    with Cluster() as c:
        h1 = _node(c, "h1", [])
        h2 = _node(c, "h2", [h1.address])
        h3 = _node(c, "h3", [h2.address])
        f = _node(c, "f", [h1.address, h2.address, h3.address])
        room = _room(h1, [h2, h3, f])
        shared = h1.call("files.send", {"to": room, "path": str(_file(c, "s.bin", size))})
        for holder in (h2, h3):
            _known(holder, shared["file_id"])
            _fetch(holder, shared["file_id"])
        alone = h1.call("files.send", {"to": f.peer_id, "path": str(_file(c, "o.bin", size))})
        _known(f, alone["file_id"])
        _known(f, shared["file_id"])
        one = _fetch(f, alone["file_id"])
        before = {h.name: _counters(h).get("files_chunks_served", 0) for h in (h1, h2, h3)}
        three = _fetch(f, shared["file_id"])
        served = {
            h.name: _counters(h).get("files_chunks_served", 0) - before[h.name]
            for h in (h1, h2, h3)
        }
    ratio = one / three
    row = Row(
        f"F2. {size // MIB} MB from three holders vs one",
        size / three / MIB,
        "MiB/s",
        size / one / MIB,
        "one holder",
        ratio,
        ">= 1.5x (cores allowing)",
        ratio >= 1.5,
        notes=f"chunks served by h1/h2/h3: {served['h1']}/{served['h2']}/{served['h3']}; "
        f"{os.cpu_count()} cores for 4 node processes",
    )
    return row, {"one_s": one, "three_s": three, "served": served}


def resume(size: int) -> tuple[Row, dict[str, Any]]:
    with Cluster() as c:
        a = _node(c, "a", [])
        b = _node(c, "b", [a.address])
        cc = _node(c, "c", [b.address])
        a.wait_route(cc.peer_id, 30)
        sent = a.call("files.send", {"to": cc.peer_id, "path": str(_file(c, "r.bin", size))})
        _known(cc, sent["file_id"])
        killed: dict[str, float] = {}

        def kill_at_half(shown: dict[str, Any]) -> None:
            if not killed and shown["have_bytes"] >= size // 2:
                os.kill(b.proc.pid, signal.SIGKILL)
                b.proc.p.wait(10)
                killed["at"] = shown["have_bytes"] / size
                killed["t"] = time.monotonic()
                port = int(b.address.rsplit("#")[0].rsplit(":", 1)[1])
                c.nodes.remove(b)
                c.nodes.append(_node(c, "b", [a.address], port))

        seconds = _fetch(cc, sent["file_id"], at=kill_at_half)
        after_kill = time.monotonic() - killed["t"] if killed else None
        counters = _counters(cc)
    duplicates = counters.get("files_chunks_duplicate", 0)
    row = Row(
        f"F3. resume after kill -9 of the relay at {killed.get('at', 0):.0%}",
        float(duplicates),
        "chunks twice",
        None,
        "",
        None,
        "<= 1 per holder (1 holder)",
        duplicates <= 1,
        notes=f"{size // MIB} MB in {seconds:.1f} s, {after_kill or 0:.1f} s of it after the kill",
    )
    data = {"seconds": seconds, "after_kill_s": after_kill, "killed_at": killed.get("at")}
    return row, {**data, "counters": counters}


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    big = 16 * MIB if quick else 100 * MIB
    part = 8 * MIB if quick else 32 * MIB
    rows: list[Row] = []
    data: dict[str, Any] = {}
    for name, job in (
        ("two_hops", lambda: over_two_hops(big, quick)),
        ("swarm", lambda: swarm(part)),
        ("resume", lambda: resume(part)),
    ):
        row, data[name] = job()
        rows.append(row)
    return rows, data
