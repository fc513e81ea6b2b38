"""Two editors at once: the concurrent trace through the Yjs bridges of a line of three nodes,
against the y-websocket reference server (issue 25).

The trace is friendsforever (Joseph Gentle's editing-traces, CC BY 4.0; see
tests/data/editing-traces/README.md), turned into each agent's raw Yjs updates
by benchmarks/concurrent_trace.py. Two y-websocket clients (in this process)
each send one agent's updates as fast as the connection takes them, without
waiting for the other: for meshnotes to the bridges of n0 and n2 of a line
n0 - n1 - n2 (all three members of the note's room), for the reference to one
`y-websocket@1.5` server (`node`, installed with npm into a temporary
directory; "baseline not measured" when node or npm is missing or the
install fails). The figure is the seconds from the first update sent to the
last of the clients (and, for meshnotes, of the three nodes) holding the
trace's final text.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from benchmarks.common import Cluster, Row, setup_room
from benchmarks.concurrent_trace import agent_updates, final_text, load, replay_client
from benchmarks.ywebsocket import Y_WEBSOCKET, reference_server

TIMEOUT = 300.0


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def _replay(urls: list[str], updates: list[list[bytes]], expected: str) -> float:
    """Both clients at once; the seconds until both hold `expected`."""
    start = time.monotonic()
    await asyncio.gather(
        *(
            replay_client(url, own, expected, TIMEOUT)
            for url, own in zip(urls, updates, strict=True)
        )
    )
    return time.monotonic() - start


def ours(updates: list[list[bytes]], expected: str) -> dict[str, Any]:
    with Cluster() as c:
        n0 = c.node("n0", extra=["--bridge"])
        bridge0 = n0.proc.readline(30).split()
        n1 = c.node("n1", [n0.address])
        n2 = c.node("n2", [n1.address], extra=["--bridge"])
        bridge2 = n2.proc.readline(30).split()
        room = setup_room(n0, [n1, n2])
        note = n0.call("note.new", {"room": room, "title": "friends"})["note_id"]
        n2.wait_note(note)
        urls = [f"{b[1]}/{note}?token={b[2]}" for b in (bridge0, bridge2)]
        sha = _digest(expected)
        start = time.monotonic()
        try:
            clients = asyncio.run(_replay(urls, updates, expected))
        except TimeoutError:
            return {"error": f"a client did not hold the final text within {TIMEOUT:.0f} s"}
        nodes: dict[str, float] = {}
        while len(nodes) < 3 and time.monotonic() - start < TIMEOUT:
            for n in (n0, n1, n2):
                if (
                    n.name not in nodes
                    and n.call("bench.note_digest", {"note": note})["sha"] == sha
                ):
                    nodes[n.name] = time.monotonic() - start
            time.sleep(0.05)
        if len(nodes) < 3:
            return {"error": f"nodes {sorted(nodes)} only reached the final text"}
        return {"clients_s": clients, "nodes_s": nodes, "seconds": max(clients, *nodes.values())}


def reference(updates: list[list[bytes]], expected: str) -> dict[str, Any]:
    with reference_server() as server:
        if server.url is None:
            return {"error": server.error}
        try:
            seconds = asyncio.run(_replay([f"{server.url}/friends"] * 2, updates, expected))
        except TimeoutError:
            # the reference server stalled (seen once in a full run, not alone): its time
            # is at least the timeout, and the ratio a lower bound
            return {"seconds": TIMEOUT, "unfinished": True}
        return {"seconds": seconds}


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    trace = load()
    txns = 8000 if quick else None
    updates = agent_updates(trace, txns)
    expected = final_text(updates) if quick else trace["endContent"]
    mine = ours(updates, expected)
    base = reference(updates, expected)
    seconds, baseline = mine.get("seconds"), base.get("seconds")
    ratio = baseline / seconds if seconds and baseline else None
    counts = "/".join(str(len(u)) for u in updates)
    notes = (
        f"{counts} updates of two editors ({len(trace['txns']) if txns is None else txns} "
        f"transactions), sent raw to the bridges of n0 and n2 of a line of three"
    )
    if "error" in mine:
        notes += f"; ours: {mine['error']}"
    if baseline is None:
        notes += f"; baseline not measured: {base.get('error')}"
    elif base.get("unfinished"):
        notes += (
            f"; baseline unfinished after {TIMEOUT:.0f} s: its time and the ratio are lower bounds"
        )
    row = Row(
        "concurrent trace, two editors on two bridges, until all hold the final text",
        seconds,
        "s",
        baseline=baseline,
        baseline_name=Y_WEBSOCKET,
        ratio=ratio,
        target=">= 1.0x (no slower than y-websocket)",
        passed=None if ratio is None else ratio >= 1.0,
        notes=notes,
    )
    return [row], {"ours": mine, "reference": base}
