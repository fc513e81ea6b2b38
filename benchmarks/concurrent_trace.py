"""The concurrent editing trace as each agent's raw Yjs updates, as its editor made them.

The trace (tests/data/editing-traces/friendsforever.json.gz: Joseph Gentle's
editing-traces collection, CC BY 4.0; see the README beside it) is a graph:
each transaction applies its patches to the text after all of its parents.
Each agent here has its own pycrdt document with a fixed client id (the
lower agent the lower id: ties between concurrent inserts at one place then
resolve as the trace expects). Before an agent's transaction, its document
is brought to the transaction's parents by applying the other agents'
updates up to them (a merge); the transaction's own update is what pycrdt
emits for it, the bytes a Yjs editor would send.

In this trace every agent's transactions form one chain and an agent's
view of the others only grows, so no document ever needs to go back (a
fork): :func:`agent_updates` checks that rather than handling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
from pathlib import Path
from typing import Any

import pycrdt
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crdt.holding import HeldUpdates

TRACE = (
    Path(__file__).resolve().parent.parent
    / "tests"
    / "data"
    / "editing-traces"
    / "friendsforever.json.gz"
)
#: client ids of agents 0, 1, ...: the lower agent first in Yjs's tie order
CLIENT_IDS = (1, 2, 3, 4)


def load(path: Path = TRACE) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        trace: dict[str, Any] = json.load(f)
    return trace


def agent_updates(trace: dict[str, Any], txns: int | None = None) -> list[list[bytes]]:
    """Each agent's updates, in trace order, for the first `txns` transactions (all: None)."""
    agents = int(trace["numAgents"])
    docs = [pycrdt.Doc(client_id=CLIENT_IDS[a]) for a in range(agents)]
    texts = [doc.get("body", type=pycrdt.Text) for doc in docs]
    updates: list[list[bytes]] = [[] for _ in range(agents)]
    seen = [[0] * agents for _ in range(agents)]  # seen[a][b]: b's updates in a's document
    versions: list[list[int]] = []  # per transaction: each agent's updates it follows
    for txn in trace["txns"][:txns]:
        wanted = [0] * agents
        for parent in txn["parents"]:
            wanted = [max(w, v) for w, v in zip(wanted, versions[parent], strict=True)]
        agent = txn["agent"]
        doc = docs[agent]
        if wanted[agent] != seen[agent][agent]:
            raise ValueError("an agent's transactions fork: this replay handles one chain each")
        for other in range(agents):
            if wanted[other] < seen[agent][other]:
                raise ValueError("a transaction goes back on what its agent saw: a fork")
            for update in updates[other][seen[agent][other] : wanted[other]]:
                doc.apply_update(update)
            seen[agent][other] = max(seen[agent][other], wanted[other])
        made: list[bytes] = []
        subscription = doc.observe(lambda event, out=made: out.append(bytes(event.update)))
        with doc.transaction():
            for position, deleted, inserted in txn["patches"]:
                if deleted:
                    del texts[agent][position : position + deleted]
                if inserted:
                    texts[agent].insert(position, inserted)  # the trace is ASCII: no offsets
        doc.unobserve(subscription)
        updates[agent].append(made[0] if len(made) == 1 else bytes(pycrdt.merge_updates(*made)))
        seen[agent][agent] += 1
        wanted[agent] = seen[agent][agent]
        versions.append(wanted)
    return updates


def final_text(updates: list[list[bytes]]) -> str:
    """The text every agent's updates give together (the trace's end for the whole trace)."""
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("body", type=pycrdt.Text)
    for own in updates:
        for update in own:
            doc.apply_update(update)
    return str(text)


async def replay_client(url: str, updates: list[bytes], expected: str, timeout: float) -> float:
    """Be one agent's Yjs editor on a y-websocket server: send each of `updates` raw as an
    update message, in order, without waiting for anything, while applying what the server
    sends; return the seconds until this client's document holds `expected`.

    The client's own document takes its own updates too, as the editor's would. What
    arrives out of order waits in :class:`crdt.holding.HeldUpdates`, as in a node: a bare
    pycrdt document can hold an update back for good (see crdt/holding.py), which the
    JavaScript Yjs of a real editor does not.
    """
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    text = doc.get("body", type=pycrdt.Text)
    held = HeldUpdates(doc.apply_update, doc.get_state)
    done = asyncio.Event()

    def check() -> None:
        if len(text) == len(expected) and str(text) == expected:
            done.set()

    async with connect(url, max_size=None, compression=None, ping_interval=None) as ws:

        async def read() -> None:
            async for message in ws:
                if not isinstance(message, bytes) or message[0] != pycrdt.YMessageType.SYNC:
                    continue
                if message[1] == pycrdt.YSyncMessageType.SYNC_STEP1:
                    reply = pycrdt.handle_sync_message(message[1:], doc)
                    if reply is not None:
                        await ws.send(reply)
                else:  # SyncStep2 or Update
                    held.offer(pycrdt.read_message(message[2:]))
                    held.release()
                    check()

        reader = asyncio.create_task(read())
        try:
            start = time.monotonic()
            await ws.send(pycrdt.create_sync_message(doc))
            for update in updates:
                held.offer(update)
                held.release()
                await ws.send(pycrdt.create_update_message(update))
            check()
            await asyncio.wait_for(done.wait(), timeout)
            return time.monotonic() - start
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await reader
