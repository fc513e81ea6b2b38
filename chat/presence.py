"""Presence: whether a peer is online now, and when it was last seen.

Nothing is sent for it: a peer is *online* while this node knows a live path to
it (its announces keep one), and *seen* whenever something it signed reaches
this node (a message, a receipt, a note edit, a signal), a link to it comes up,
or — for contacts, every `SWEEP_EVERY` seconds — a live path to it is known.
The last time is kept in ``last_seen`` (wall-clock seconds), written at most
once a minute per peer, so it survives restarts and reads without a node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from mesh.runtime.node import Node
from mesh.storage.store import Store, run_script
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

if TYPE_CHECKING:
    import sqlite_utils

#: the presence layer's tables (Store.migrate_component "presence")
PRESENCE_V1 = "CREATE TABLE last_seen (peer_id TEXT PRIMARY KEY, ts REAL NOT NULL);"
MIGRATIONS: list[Callable[[sqlite_utils.Database], object]] = [
    lambda db: run_script(db, PRESENCE_V1),
]
#: a peer's last_seen row is written at most this often (seconds)
WRITE_EVERY = 60.0
#: how often contacts with a live path are marked seen (seconds)
SWEEP_EVERY = 30.0
#: the envelopes whose author counts as seen when one arrives
SEEN_BY = (
    EnvelopeType.CHAT,
    EnvelopeType.CONTROL,
    EnvelopeType.RECEIPT,
    EnvelopeType.NOTE,
    EnvelopeType.SIGNAL,
)


def last_seen(store: Store, peer_id: str) -> float | None:
    """When the peer was last seen, as the home's database holds it (None: never, or a
    database from before presence was kept)."""
    if not store.has_table("last_seen"):  # read-only, from before presence was kept
        return None
    rows = store.query("SELECT ts FROM last_seen WHERE peer_id = ?", (peer_id,))
    return float(rows[0]["ts"]) if rows else None


class Presence:
    """Keeps when each peer was last seen, on one node."""

    def __init__(self, node: Node, store: Store) -> None:
        self.node = node
        self.store = store
        self._written: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        store.migrate_component("presence", MIGRATIONS)
        for kind in SEEN_BY:
            node.on_deliver(kind, self._delivered)
        node.on_link_up(self.seen)

    def start(self) -> None:
        self._task = asyncio.create_task(self._sweeping())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sweeping(self) -> None:
        while True:
            self.sweep()
            await asyncio.sleep(SWEEP_EVERY)

    def sweep(self) -> None:
        """Mark seen the contacts this node has a live path to now."""
        now = self.node.clock()
        for row in self.store.query("SELECT peer_id FROM contacts"):
            peer = decode_peer_id(row["peer_id"])
            if self.node.router.route_to(peer, now) is not None:
                self.seen(peer)

    def _delivered(self, envelope: Envelope) -> None:
        self.seen(envelope.author)

    def seen(self, peer: bytes) -> None:
        """Something of `peer`'s reached this node now."""
        peer_id = encode_peer_id(peer)
        now = self.node.clock()
        if now - self._written.get(peer_id, -WRITE_EVERY) < WRITE_EVERY:
            return
        self._written[peer_id] = now
        self.store.execute(
            "INSERT INTO last_seen (peer_id, ts) VALUES (?, ?)"
            " ON CONFLICT(peer_id) DO UPDATE SET ts = max(ts, excluded.ts)",
            (peer_id, now),
        )

    def of(self, peer: bytes) -> dict[str, object]:
        """{"online", "last_seen"}: a live path now, and the last time it was seen."""
        online = self.node.router.route_to(peer, self.node.clock()) is not None
        peer_id = encode_peer_id(peer)
        if online:
            self.seen(peer)
            return {"online": True, "last_seen": self.node.clock()}
        return {"online": False, "last_seen": last_seen(self.store, peer_id)}
