"""Room logs: every node keeps the room-addressed envelopes it sees, to catch others up.

Room envelopes of stored types (note updates) are flooded to the whole mesh
and kept, per room, by every node they pass — members and relays alike; a
relay holds only ciphertext. Each author numbers its envelopes for a room
1, 2, 3...; a log is summed up as a vector {author: n} where n is the highest
number below which nothing is missing. When a link comes up, the two nodes
swap their vectors (an INVENTORY envelope, neighbour-only) and each sends the
other the envelopes it lacks, so a peer that was away for a week catches up
from whichever node is online. Quotas bound each room's log and all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgpack

from mesh.envelope import DestKind, Envelope
from mesh.identity import decode_peer_id, encode_peer_id
from mesh.store import Store

#: rooms and authors one inventory names at most (it must fit in one envelope)
MAX_INVENTORY_ROOMS = 64
MAX_INVENTORY_AUTHORS = 64


@dataclass(frozen=True)
class RoomLogLimits:
    per_room_items: int = 50_000
    per_room_bytes: int = 64 * 1024 * 1024
    max_rooms: int = 1000


Vector = dict[bytes, int]


class RoomLog:
    """The room logs in the home's database."""

    def __init__(self, store: Store, limits: RoomLogLimits | None = None) -> None:
        self.store = store
        self.limits = limits or RoomLogLimits()
        self.counters: dict[str, int] = {}

    def _count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def keep(self, envelope: Envelope, now: float) -> bool:
        """Keep a room envelope (once per room, author and sequence); return whether it is new."""
        if envelope.dest_kind != DestKind.ROOM:
            return False
        room, author = encode_peer_id(envelope.dest), encode_peer_id(envelope.author)
        data = envelope.encode()
        with self.store.atomic():
            added = self.store.execute(
                "INSERT OR IGNORE INTO room_log (room_id, author, seq, env_id, envelope,"
                " stored_at, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (room, author, envelope.seq, envelope.message_id.hex(), data, now, len(data)),
            )
            if added:
                self._enforce_quota(room)
        if added:
            self._count("roomlog_kept")
        return bool(added)

    def _enforce_quota(self, room: str) -> None:
        totals = self.store.query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM room_log WHERE room_id = ?",
            (room,),
        )[0]
        excess = max(0, totals["n"] - self.limits.per_room_items)
        if totals["b"] > self.limits.per_room_bytes:
            excess = max(excess, 1 + totals["n"] // 10)  # make room in a few big steps
        if excess:
            self.store.execute(
                "DELETE FROM room_log WHERE rowid IN (SELECT rowid FROM room_log"
                " WHERE room_id = ? ORDER BY stored_at LIMIT ?)",
                (room, excess),
            )
            self._count("roomlog_evicted", excess)
        rooms = self.store.query("SELECT COUNT(DISTINCT room_id) AS n FROM room_log")[0]["n"]
        if rooms > self.limits.max_rooms:
            oldest = self.store.query(
                "SELECT room_id FROM room_log GROUP BY room_id ORDER BY MAX(stored_at) LIMIT 1"
            )[0]["room_id"]
            self.store.execute("DELETE FROM room_log WHERE room_id = ?", (oldest,))
            self._count("roomlog_rooms_evicted")

    def vector(self, room: bytes) -> Vector:
        """{author: highest n such that 1..n are all here} for one room."""
        rows = self.store.query(
            "SELECT author, seq FROM room_log WHERE room_id = ? ORDER BY author, seq",
            (encode_peer_id(room),),
        )
        vector: dict[str, int] = {}
        for row in rows:
            have = vector.setdefault(row["author"], 0)
            if row["seq"] == have + 1:
                vector[row["author"]] = row["seq"]
        return {decode_peer_id(a): n for a, n in vector.items()}

    def rooms(self) -> list[bytes]:
        rows = self.store.query(
            "SELECT room_id FROM room_log GROUP BY room_id ORDER BY MAX(stored_at) DESC"
        )
        return [decode_peer_id(r["room_id"]) for r in rows]

    def inventory(self, interests: Iterable[bytes] = ()) -> bytes:
        """The INVENTORY payload: our vectors for the rooms we log or belong to."""
        rooms = list(dict.fromkeys([*interests, *self.rooms()]))[:MAX_INVENTORY_ROOMS]
        body = {}
        for room in rooms:
            vector = sorted(self.vector(room).items(), key=lambda kv: -kv[1])
            body[room] = dict(vector[:MAX_INVENTORY_AUTHORS])
        return bytes(msgpack.packb(body))

    def missing(self, payload: bytes, limit: int = 20_000) -> list[Envelope]:
        """The envelopes a neighbour lacks, given its inventory (oldest first per author).

        Raises ValueError (or a msgpack error) for a malformed inventory.
        """
        body = msgpack.unpackb(payload, strict_map_key=False)
        if not isinstance(body, dict) or len(body) > MAX_INVENTORY_ROOMS:
            raise ValueError("malformed inventory")
        found: list[Envelope] = []
        for room, theirs in body.items():
            if not isinstance(room, bytes) or len(room) != 32 or not isinstance(theirs, dict):
                raise ValueError("malformed inventory")
            if len(theirs) > MAX_INVENTORY_AUTHORS:
                raise ValueError("malformed inventory")
            have = {
                encode_peer_id(a): int(n)
                for a, n in theirs.items()
                if isinstance(a, bytes) and len(a) == 32 and isinstance(n, int)
            }
            rows = self.store.query(
                "SELECT author, seq, envelope FROM room_log WHERE room_id = ? ORDER BY author, seq",
                (encode_peer_id(room),),
            )
            for row in rows:
                if row["seq"] > have.get(row["author"], 0):
                    found.append(Envelope.decode(row["envelope"]))
                    if len(found) >= limit:
                        return found
        return found

    def status(self) -> dict[str, Any]:
        row = self.store.query("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM room_log")[0]
        return {
            "size": row["n"],
            "bound": self.limits.per_room_items * self.limits.max_rooms,
            "bytes": row["b"],
            "rooms": len(self.rooms()),
            "rooms_bound": self.limits.max_rooms,
        }
