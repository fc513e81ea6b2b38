"""Room logs: every node keeps the room-addressed envelopes it sees, to catch others up.

Room envelopes of stored types (note updates) are flooded to the whole mesh
and kept, per room, by every node they pass — members and relays alike; a
relay holds only ciphertext. Each author numbers its envelopes for a room
1, 2, 3...; a log is summed up as a vector {author: n} where n is the highest
number below which nothing is missing. When a link comes up, the two nodes
swap their vectors (an INVENTORY envelope, neighbour-only: mesh/storage/inventory.py)
and each sends the other the envelopes it lacks, so a peer that was away for
a week catches up from whichever node is online. Quotas bound each room's log
and all of them (mesh/storage/roomquota.py).

Snapshots. A node that asks in its inventory for snapshots by some authors
(the room's members, which only a member knows) gets, per document, the most
covering complete snapshot by one of them and the envelopes it does not
cover, instead of the whole history (mesh/storage/covering.py; the layer that
owns the payloads reads them for the log). Every other inventory, a relay's
say, is answered with everything.

Held ranges. A member that caught up from a snapshot lacks the envelopes the
snapshot covers, for good, so its vector stops below everything it holds
after them. Its inventory therefore also names the runs of sequence numbers
it holds past its vector (the longest few), and those are not sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import msgpack

from mesh.errors import EnvelopeError, UsageError
from mesh.storage.covering import Coverage, SnapshotReader
from mesh.storage.inventory import MAX_INVENTORY_ROOMS, Ask, Vector, entry, parse_inventory
from mesh.storage.roomquota import RoomLogLimits, RoomQuota
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope
from mesh.wire.identity import decode_peer_id, encode_peer_id

__all__ = ["ANSWER_PAGE_ROWS", "MAX_SENT_ROOMS", "RoomLog", "RoomLogLimits", "Sent", "Vector"]

#: rows one step of an inventory's answer reads at most (the node yields to its loop between)
ANSWER_PAGE_ROWS = 256
#: rooms whose sent envelopes one link's answers remember at most (the oldest forgotten)
MAX_SENT_ROOMS = 1024

#: what one link was sent of each room: {room: {author id: highest seq sent}}
Sent = dict[bytes, dict[str, int]]


class RoomLog:
    """The room logs in the home's database."""

    def __init__(
        self,
        store: Store,
        limits: RoomLogLimits | None = None,
        members: Callable[[], Iterable[bytes]] = tuple,
        snapshots: SnapshotReader | None = None,
    ) -> None:
        """`members` names the rooms this node is a member of: their logs are never
        evicted for strangers' rooms, which share the stranger pool (mesh/storage/pool.py).
        `snapshots` reads the snapshots among the room envelopes (see :meth:`read_snapshots`)."""
        self.store = store
        self.counters: dict[str, int] = {}
        self.quota = RoomQuota(store, limits or RoomLogLimits(), members, self.counters)
        self._snapshots = snapshots

    @property
    def limits(self) -> RoomLogLimits:
        return self.quota.limits

    @limits.setter
    def limits(self, limits: RoomLogLimits) -> None:
        self.quota.limits = limits

    def read_snapshots(self, reader: SnapshotReader) -> None:
        """Let the layer that owns the room envelopes' payloads read snapshots for this log
        (once: a second reader is a mistake)."""
        if self._snapshots is not None and self._snapshots is not reader:
            raise UsageError("the room log reads snapshots with another reader already")
        self._snapshots = reader

    def keep(self, envelope: Envelope, now: float) -> bool:
        """Keep a room envelope (once per room, author and sequence); return whether it is new."""
        if envelope.dest_kind != DestKind.ROOM:
            return False
        room, author = encode_peer_id(envelope.dest), encode_peer_id(envelope.author)
        data = envelope.encode()
        member = self.quota.is_member(room, now)
        try:
            with self.store.atomic():
                added = self.store.execute(
                    "INSERT OR IGNORE INTO room_log (room_id, author, seq, env_id, envelope,"
                    " stored_at, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (room, author, envelope.seq, envelope.message_id.hex(), data, now, len(data)),
                )
                if added:
                    self.quota.charge(room, author, len(data), member)
        except BaseException:
            self.quota.forget()  # rolled back: read the totals again
            raise
        if added:
            self.counters["roomlog_kept"] = self.counters.get("roomlog_kept", 0) + 1
        return bool(added)

    def vector(self, room: bytes) -> Vector:
        """{author: highest n such that 1..n are all here} for one room."""
        return self._holdings(room)[0]

    def _holdings(self, room: bytes) -> tuple[Vector, dict[bytes, list[tuple[int, int]]]]:
        """A room's vector, and the runs (first, last) of sequence numbers held past it."""
        rows = self.store.query(
            "SELECT author, seq FROM room_log WHERE room_id = ? ORDER BY author, seq",
            (encode_peer_id(room),),
        )
        vector: dict[str, int] = {}
        runs: dict[str, list[list[int]]] = {}
        for row in rows:
            author, seq = row["author"], row["seq"]
            have = vector.setdefault(author, 0)
            if seq == have + 1:
                vector[author] = seq
                continue
            held = runs.setdefault(author, [])
            if held and held[-1][1] == seq - 1:
                held[-1][1] = seq
            else:
                held.append([seq, seq])
        return (
            {decode_peer_id(a): n for a, n in vector.items()},
            {decode_peer_id(a): [(r[0], r[1]) for r in held] for a, held in runs.items()},
        )

    def rooms(self) -> list[bytes]:
        rows = self.store.query(
            "SELECT room_id FROM room_log GROUP BY room_id ORDER BY MAX(stored_at) DESC"
        )
        return [decode_peer_id(r["room_id"]) for r in rows]

    def inventory(self, interests: Iterable[bytes] = ()) -> bytes:
        """The INVENTORY payload: our vectors for the rooms we log or belong to.

        A room the snapshot reader names authors for also carries them: we take
        snapshots by those authors.
        """
        rooms = list(dict.fromkeys([*interests, *self.rooms()]))[:MAX_INVENTORY_ROOMS]
        body: dict[bytes, dict[bytes, Any]] = {}
        for room in rooms:
            trusted = self._snapshots.authors(room) if self._snapshots is not None else []
            body[room] = entry(*self._holdings(room), trusted)
        return bytes(msgpack.packb(body))

    def missing(self, payload: bytes, limit: int = 20_000) -> list[Envelope]:
        """The envelopes a neighbour lacks, given its inventory (oldest first per author).

        All of :meth:`answer` at once (tests and tools; the node streams it).
        Raises ValueError (or a msgpack error) for a malformed inventory.
        """
        found: list[Envelope] = []
        for page in self.answer(payload):
            found += [Envelope.decode(data) for data in page]
            if len(found) >= limit:
                return found[:limit]
        return found

    def answer(
        self, payload: bytes, sent: Sent | None = None, page_rows: int = ANSWER_PAGE_ROWS
    ) -> Iterator[list[bytes]]:
        """The envelopes (encoded, as kept) a neighbour lacks, given its inventory, in pages.

        Each step of the iterator reads at most `page_rows` rows (the node yields
        to its event loop between steps and charges each to the link's budget);
        a page may be empty. With `sent`, what this link was already sent counts
        as held, and what is sent now is added to it: the same inventory repeated
        is answered with nothing. Raises ValueError (or a msgpack error) at once
        for a malformed inventory.
        """
        return self._pages(parse_inventory(payload), sent, page_rows)

    def after(self, room: bytes, vector: Vector) -> list[Envelope]:
        """What the log holds of a room past `vector` (any number of authors), oldest first
        per author: a node's own replay of what it has not applied yet."""
        ask = Ask(room, {encode_peer_id(a): n for a, n in vector.items()}, set(), {})
        return [Envelope.decode(d) for page in self._pages([ask], None, 1024) for d in page]

    def _pages(self, asks: list[Ask], sent: Sent | None, page_rows: int) -> Iterator[list[bytes]]:
        for ask in asks:
            room_id = encode_peer_id(ask.room)
            already: dict[str, int] = {}
            if sent is not None:
                if ask.room not in sent and len(sent) >= MAX_SENT_ROOMS:
                    del sent[next(iter(sent))]  # the oldest room this link asked for
                already = sent.setdefault(ask.room, {})
            have = dict(ask.have)
            for author, n in already.items():
                if n > have.get(author, 0):
                    have[author] = n
            skip: set[tuple[str, int]] = set()
            if ask.trusted:
                skip = yield from self._covered(room_id, ask.trusted, page_rows)
            author, seq = "", 0
            while True:
                rows = self._page(room_id, author, seq, page_rows)
                if not rows:
                    break
                page: list[bytes] = []
                for row in rows:
                    author, seq = row["author"], row["seq"]
                    floor = have.get(author, 0)
                    if seq <= floor:
                        seq = floor  # jump past what it holds: the next read starts there
                        break
                    if (author, seq) in skip or any(
                        first <= seq <= last for first, last in ask.held.get(author, ())
                    ):
                        continue
                    page.append(row["envelope"])
                    if sent is not None and seq > already.get(author, 0):
                        already[author] = seq
                yield page

    def _page(self, room_id: str, author: str, seq: int, rows: int) -> list[dict[str, Any]]:
        """Up to `rows` of a room's log past (author, seq), in (author, seq) order."""
        return self.store.query(
            "SELECT author, seq, envelope FROM room_log WHERE room_id = ? AND"
            " (author > ? OR (author = ? AND seq > ?)) ORDER BY author, seq LIMIT ?",
            (room_id, author, author, seq, rows),
        )

    def _covered(
        self, room_id: str, trusted: set[str], page_rows: int
    ) -> Generator[list[bytes], None, set[tuple[str, int]]]:
        """The (author, seq) of the envelopes that the best snapshot of their document
        covers (see mesh/storage/covering.py), read in pages (yielding an empty page after
        each)."""
        coverage = Coverage(trusted)
        reader = self._snapshots
        if reader is None:
            return set()
        author, seq = "", 0
        while True:
            rows = self._page(room_id, author, seq, page_rows)
            if not rows:
                break
            for row in rows:
                author, seq, data = row["author"], row["seq"], row["envelope"]
                if data[2] != reader.envelope_type:  # the type byte: no need to decode others
                    continue
                try:
                    document, snap = reader.read(Envelope.decode(data).payload)
                except (ValueError, EnvelopeError):
                    continue  # not ours to judge: members refuse it and count it
                coverage.add(author, seq, document, snap)
            yield []
        return coverage.covered()

    def status(self) -> dict[str, Any]:
        row = self.store.query("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM room_log")[0]
        return {
            "size": row["n"],
            "bound": self.limits.per_room_items * self.limits.max_rooms,
            "bytes": row["b"],
            "rooms": len(self.rooms()),
            "rooms_bound": self.limits.max_rooms,
            "stranger_bytes": self.quota.stranger_total(),
            "stranger_bytes_bound": self.limits.stranger_bytes,
            "member_bytes_bound": self.limits.member_bytes,
        }
