"""Room logs: every node keeps the room-addressed envelopes it sees, to catch others up.

Room envelopes of stored types (note updates) are flooded to the whole mesh
and kept, per room, by every node they pass — members and relays alike; a
relay holds only ciphertext. Each author numbers its envelopes for a room
1, 2, 3...; a log is summed up as a vector {author: n} where n is the highest
number below which nothing is missing. When a link comes up, the two nodes
swap their vectors (an INVENTORY envelope, neighbour-only) and each sends the
other the envelopes it lacks, so a peer that was away for a week catches up
from whichever node is online. Quotas bound each room's log and all of them.

Snapshots. A member may publish a note's whole state as a snapshot: NOTE
envelopes whose payload ``[note, epoch, sealed part, [part, parts, covers]]``
names, in clear, the per-author sequence vector ``covers`` whose NOTE
envelopes of that note the state includes. A node that asks in its inventory
for snapshots by some authors (the room's members, which only a member knows)
gets, per note, the most covering complete snapshot by one of them and the
envelopes of that note it does not cover, instead of the whole history. Every
other inventory, a relay's say, is answered with everything, as before.

Held ranges. A member that caught up from a snapshot lacks the envelopes the
snapshot covers, for good, so its vector stops below everything it holds
after them. Its inventory therefore also names the runs of sequence numbers
it holds past its vector (the longest few), and those are not sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

from mesh.errors import EnvelopeError
from mesh.storage.pool import ROW_OVERHEAD, StrangerPool
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

#: rooms and authors one inventory names at most (it must fit in one envelope)
MAX_INVENTORY_ROOMS = 64
MAX_INVENTORY_AUTHORS = 64
#: the key, in a room's inventory entry, of the authors whose snapshots the asker takes
#: (not 32 bytes long, so a node that knows nothing of snapshots skips it)
SNAPSHOT_AUTHORS = b"snap"
#: parts one snapshot has at most
MAX_SNAPSHOT_PARTS = 64
#: the key, in a room's inventory entry, of the runs of sequence numbers held past the vector:
#: {author: [first, last, first, last, ...]} (not 32 bytes long either)
HELD = b"held"
#: runs one room's inventory entry names at most (the longest)
MAX_HELD_RANGES = 8
#: rows one step of an inventory's answer reads at most (the node yields to its loop between)
ANSWER_PAGE_ROWS = 256
#: rooms whose sent envelopes one link's answers remember at most (the oldest forgotten)
MAX_SENT_ROOMS = 1024

#: what one link was sent of each room: {room: {author id: highest seq sent}}
Sent = dict[bytes, dict[str, int]]


@dataclass(frozen=True)
class RoomLogLimits:
    per_room_items: int = 50_000
    per_room_bytes: int = 64 * 1024 * 1024
    max_rooms: int = 1000
    #: all logs of rooms this node is a member of (oldest entries evicted past it)
    member_bytes: int = 1024 * 1024 * 1024
    #: all logs of other rooms together, entries charged with ROW_OVERHEAD (mesh/storage/pool.py)
    stranger_bytes: int = 32 * 1024 * 1024


#: seconds the member rooms are taken as known before they are asked for again
MEMBERS_TTL = 1.0


Vector = dict[bytes, int]


@dataclass(frozen=True)
class SnapshotHeader:
    """The clear part of a snapshot envelope: which part it is and what the state covers."""

    part: int
    parts: int
    covers: Vector

    def encode(self) -> list[Any]:
        return [self.part, self.parts, self.covers]

    @classmethod
    def decode(cls, value: object) -> SnapshotHeader:
        """Raises ValueError for anything but [part, parts, {32-byte author: seq}]."""
        if not (isinstance(value, list) and len(value) == 3):
            raise ValueError("malformed snapshot header")
        part, parts, covers = value
        if not (
            isinstance(part, int)
            and isinstance(parts, int)
            and 0 <= part < parts <= MAX_SNAPSHOT_PARTS
            and isinstance(covers, dict)
            and len(covers) <= MAX_INVENTORY_AUTHORS
            and all(
                isinstance(a, bytes) and len(a) == 32 and isinstance(n, int) and 0 <= n < 2**63
                for a, n in covers.items()
            )
        ):
            raise ValueError("malformed snapshot header")
        return cls(part, parts, dict(covers))


def note_header(payload: bytes) -> tuple[bytes, SnapshotHeader | None]:
    """(note id, snapshot header or None) of a NOTE payload; ValueError when malformed."""
    try:
        fields = msgpack.unpackb(payload)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError("malformed note payload") from exc
    if not isinstance(fields, list) or len(fields) not in (3, 4):
        raise ValueError("malformed note payload")
    note = fields[0]
    if not (isinstance(note, bytes) and len(note) == 32):
        raise ValueError("malformed note payload")
    return note, (SnapshotHeader.decode(fields[3]) if len(fields) == 4 else None)


def _held(theirs: dict[Any, Any]) -> dict[str, list[tuple[int, int]]]:
    """The runs an inventory entry says it holds past its vector (malformed ones ignored)."""
    value = theirs.get(HELD)
    if not isinstance(value, dict) or len(value) > MAX_INVENTORY_AUTHORS:
        return {}
    held = {}
    for author, runs in value.items():
        if (
            isinstance(author, bytes)
            and len(author) == 32
            and isinstance(runs, list)
            and len(runs) <= 2 * MAX_HELD_RANGES
            and all(isinstance(n, int) for n in runs)
        ):
            held[encode_peer_id(author)] = list(zip(runs[0::2], runs[1::2], strict=False))
    return held


@dataclass(frozen=True)
class _Ask:
    """One room of an inventory: what the asker holds, whose snapshots it takes."""

    room: bytes
    have: dict[str, int]
    trusted: set[str]
    held: dict[str, list[tuple[int, int]]]


def _parse_inventory(payload: bytes) -> list[_Ask]:
    """The rooms an INVENTORY payload asks about; ValueError (or msgpack's) when malformed."""
    body = msgpack.unpackb(payload, strict_map_key=False)
    if not isinstance(body, dict) or len(body) > MAX_INVENTORY_ROOMS:
        raise ValueError("malformed inventory")
    asks = []
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
        trusted = theirs.get(SNAPSHOT_AUTHORS)
        trusted_ids = (
            {encode_peer_id(a) for a in trusted if isinstance(a, bytes) and len(a) == 32}
            if isinstance(trusted, list)
            else set()
        )
        asks.append(_Ask(room, have, trusted_ids, _held(theirs)))
    return asks


class RoomLog:
    """The room logs in the home's database."""

    def __init__(
        self,
        store: Store,
        limits: RoomLogLimits | None = None,
        members: Callable[[], Iterable[bytes]] = tuple,
    ) -> None:
        """`members` names the rooms this node is a member of: their logs are never
        evicted for strangers' rooms, which share the stranger pool (mesh/storage/pool.py)."""
        self.store = store
        self.limits = limits or RoomLogLimits()
        self.members = members
        self.counters: dict[str, int] = {}
        self._member_ids: tuple[str, ...] = ()
        self._members_until = float("-inf")
        self._pool: StrangerPool | None = None  # read from the database on first use
        self._member_total: int | None = None
        # per-room [entries, bytes] and the number of rooms, read from the database on first
        # use and kept up to date here: summing a large log at every keep cost more than the
        # keep itself (no other code writes the room_log table)
        self._totals: dict[str, list[int]] = {}
        self._room_count: int | None = None
        #: the authors whose snapshots of a room's notes we take (set by the notes layer)
        self.snapshot_authors: Callable[[bytes], list[bytes]] | None = None

    def _count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def keep(self, envelope: Envelope, now: float) -> bool:
        """Keep a room envelope (once per room, author and sequence); return whether it is new."""
        if envelope.dest_kind != DestKind.ROOM:
            return False
        room, author = encode_peer_id(envelope.dest), encode_peer_id(envelope.author)
        data = envelope.encode()
        member = room in self._members(now)
        try:
            with self.store.atomic():
                added = self.store.execute(
                    "INSERT OR IGNORE INTO room_log (room_id, author, seq, env_id, envelope,"
                    " stored_at, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (room, author, envelope.seq, envelope.message_id.hex(), data, now, len(data)),
                )
                if added:
                    self._added(room, len(data))
                    self._enforce_quota(room)
                    if member:
                        self._added_for_member(len(data))
                    else:
                        self._added_for_stranger(author, len(data))
        except BaseException:
            self._totals.clear()  # rolled back: read the totals again
            self._room_count = None
            self._pool = None
            self._member_total = None
            raise
        if added:
            self._count("roomlog_kept")
        return bool(added)

    def _members(self, now: float) -> tuple[str, ...]:
        """The ids of the rooms this node is a member of (asked at most once a MEMBERS_TTL)."""
        if now >= self._members_until or now < self._members_until - MEMBERS_TTL:
            ids = tuple(sorted(encode_peer_id(room) for room in self.members()))
            if ids != self._member_ids:
                self._member_ids = ids
                self._pool = None  # rooms changed sides: tally both again
                self._member_total = None
            self._members_until = now + MEMBERS_TTL
        return self._member_ids

    def _not_members(self) -> tuple[str, tuple[str, ...]]:
        """A WHERE clause (and its parameters) for the entries of strangers' rooms."""
        ids = self._member_ids
        return f"room_id NOT IN ({','.join('?' * len(ids))})", ids

    def _stranger_pool(self) -> StrangerPool:
        if self._pool is None:
            where, params = self._not_members()
            rows = self.store.query(
                f"SELECT author, SUM(size) + COUNT(*) * {ROW_OVERHEAD} AS b FROM room_log"
                f" WHERE {where} GROUP BY author",
                params,
            )
            self._pool = StrangerPool(
                self.limits.stranger_bytes, {r["author"]: r["b"] for r in rows}
            )
        return self._pool

    def _added_for_stranger(self, author: str, size: int) -> None:
        """Charge a new entry of a stranger's room to the pool; evict while it is over:
        the oldest entries of the author holding most, a sixteenth of the pool at a time."""
        counted = self._pool is None  # a tally read now holds the new entry already
        pool = self._stranger_pool()
        if not counted:
            pool.add(author, size + ROW_OVERHEAD)
        where, params = self._not_members()
        while pool.excess():
            heaviest = pool.heaviest()
            assert heaviest is not None
            target = max(pool.excess(), pool.bound // 16)
            rows = self.store.query(
                f"SELECT rowid, room_id, size FROM room_log WHERE author = ? AND {where}"
                " ORDER BY stored_at LIMIT 4096",
                (heaviest, *params),
            )
            if not rows:
                self._pool = None  # the tally disagrees with the table: count again
                return
            freed = 0
            for row in rows:
                self.store.execute("DELETE FROM room_log WHERE rowid = ?", (row["rowid"],))
                pool.remove(heaviest, row["size"] + ROW_OVERHEAD)
                self._totals.pop(row["room_id"], None)  # read again on next use
                freed += row["size"] + ROW_OVERHEAD
                if freed >= target:
                    break
            self._room_count = None
            self._count("roomlog_evicted_stranger_pool", len(rows))

    def _added_for_member(self, size: int) -> None:
        """Count a new entry of a member room; past member_bytes, evict the oldest of those."""
        if self._member_total is None:
            ids = self._member_ids
            self._member_total = self.store.query(
                "SELECT COALESCE(SUM(size), 0) AS b FROM room_log"
                f" WHERE room_id IN ({','.join('?' * len(ids))})",
                ids,
            )[0]["b"]
        else:
            self._member_total += size
        ids = self._member_ids
        while self._member_total > self.limits.member_bytes:
            rows = self.store.query(
                "SELECT rowid, room_id, size FROM room_log"
                f" WHERE room_id IN ({','.join('?' * len(ids))}) ORDER BY stored_at LIMIT 256",
                ids,
            )
            if not rows:
                self._member_total = None
                return
            for row in rows:
                self.store.execute("DELETE FROM room_log WHERE rowid = ?", (row["rowid"],))
                self._member_total -= row["size"]
                self._totals.pop(row["room_id"], None)
            self._room_count = None
            self._count("roomlog_evicted_member_budget", len(rows))

    def _added(self, room: str, size: int) -> None:
        """Count a new entry (already inserted) in the cached totals."""
        totals = self._totals.get(room)
        if totals is None:
            row = self.store.query(
                "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM room_log WHERE room_id = ?",
                (room,),
            )[0]
            self._totals[room] = totals = [row["n"], row["b"]]
        else:
            totals[0] += 1
            totals[1] += size
        if totals[0] == 1 and self._room_count is not None:
            self._room_count += 1  # a room new to the log

    def _enforce_quota(self, room: str) -> None:
        count, size = self._totals[room]
        excess = max(0, count - self.limits.per_room_items)
        if size > self.limits.per_room_bytes:
            excess = max(excess, 1 + count // 10)  # make room in a few big steps
        if excess:
            self.store.execute(
                "DELETE FROM room_log WHERE rowid IN (SELECT rowid FROM room_log"
                " WHERE room_id = ? ORDER BY stored_at LIMIT ?)",
                (room, excess),
            )
            self._count("roomlog_evicted", excess)
            del self._totals[room]  # read again on next use
            self._pool = None
            self._member_total = None
        if self._room_count is None:
            self._room_count = self.store.query(
                "SELECT COUNT(DISTINCT room_id) AS n FROM room_log"
            )[0]["n"]
        if self._room_count > self.limits.max_rooms:
            # only a stranger's room goes: a member room is never evicted for another
            where, params = self._not_members()
            oldest = self.store.query(
                f"SELECT room_id FROM room_log WHERE {where} GROUP BY room_id"
                " ORDER BY MAX(stored_at) LIMIT 1",
                params,
            )
            if not oldest:
                return
            self.store.execute("DELETE FROM room_log WHERE room_id = ?", (oldest[0]["room_id"],))
            self._count("roomlog_rooms_evicted")
            self._totals.pop(oldest[0]["room_id"], None)
            self._room_count -= 1
            self._pool = None

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

    def inventory(
        self,
        interests: Iterable[bytes] = (),
        snapshot_authors: Callable[[bytes], list[bytes]] | None = None,
    ) -> bytes:
        """The INVENTORY payload: our vectors for the rooms we log or belong to.

        With `snapshot_authors` (or `self.snapshot_authors`), a room it names
        authors for also carries them: we take snapshots by those authors.
        """
        authors_of = snapshot_authors or self.snapshot_authors
        rooms = list(dict.fromkeys([*interests, *self.rooms()]))[:MAX_INVENTORY_ROOMS]
        body: dict[bytes, dict[bytes, Any]] = {}
        for room in rooms:
            trusted = authors_of(room)[:MAX_INVENTORY_AUTHORS] if authors_of else []
            have, runs = self._holdings(room)
            vector = sorted(have.items(), key=lambda kv: -kv[1])
            longest = sorted(
                ((author, run) for author, held in runs.items() for run in held),
                key=lambda item: item[1][0] - item[1][1],
            )[:MAX_HELD_RANGES]
            held: dict[bytes, list[int]] = {}
            for author, (first, last) in sorted(longest):
                held.setdefault(author, []).extend((first, last))
            named = MAX_INVENTORY_AUTHORS - bool(trusted) - bool(held)
            entry: dict[bytes, Any] = dict(vector[:named])
            if trusted:
                entry[SNAPSHOT_AUTHORS] = list(trusted)
            if held:
                entry[HELD] = held
            body[room] = entry
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
        return self._pages(_parse_inventory(payload), sent, page_rows)

    def after(self, room: bytes, vector: Vector) -> list[Envelope]:
        """What the log holds of a room past `vector` (any number of authors), oldest first
        per author: a node's own replay of what it has not applied yet."""
        ask = _Ask(room, {encode_peer_id(a): n for a, n in vector.items()}, set(), {})
        return [Envelope.decode(d) for page in self._pages([ask], None, 1024) for d in page]

    def _pages(self, asks: list[_Ask], sent: Sent | None, page_rows: int) -> Iterator[list[bytes]]:
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
                rows = self.store.query(
                    "SELECT author, seq, envelope FROM room_log WHERE room_id = ? AND"
                    " (author > ? OR (author = ? AND seq > ?)) ORDER BY author, seq LIMIT ?",
                    (room_id, author, author, seq, page_rows),
                )
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

    def _covered(
        self, room_id: str, trusted: set[str], page_rows: int
    ) -> Generator[list[bytes], None, set[tuple[str, int]]]:
        """The (author, seq) of the NOTE envelopes that the best snapshot of their note
        covers, read in pages (yielding an empty page after each).

        Per note, the best snapshot is the complete one (every part here) by a
        trusted author that covers most; its own parts are not covered.
        """
        notes: list[tuple[str, int, bytes]] = []
        parts: dict[tuple[bytes, str, int], dict[int, SnapshotHeader]] = {}
        author, seq = "", 0
        while True:
            rows = self.store.query(
                "SELECT author, seq, envelope FROM room_log WHERE room_id = ? AND"
                " (author > ? OR (author = ? AND seq > ?)) ORDER BY author, seq LIMIT ?",
                (room_id, author, author, seq, page_rows),
            )
            if not rows:
                break
            for row in rows:
                author, seq, data = row["author"], row["seq"], row["envelope"]
                if data[2] != EnvelopeType.NOTE:  # the type byte: no need to decode others
                    continue
                try:
                    note, snap = note_header(Envelope.decode(data).payload)
                except (ValueError, EnvelopeError):
                    continue  # not ours to judge: members refuse it and count it
                notes.append((author, seq, note))
                if snap is not None and author in trusted:
                    parts.setdefault((note, author, seq - snap.part), {})[snap.part] = snap
            yield []
        # note -> (score, author, base, parts, covers)
        best: dict[bytes, tuple[int, str, int, int, Vector]] = {}
        for (note, author, base), got in parts.items():
            headers = list(got.values())
            first = headers[0]
            if len(got) != first.parts or any(
                h.parts != first.parts or h.covers != first.covers for h in headers
            ):
                continue  # incomplete or inconsistent: not usable
            score = sum(first.covers.values())
            if note not in best or score > best[note][0]:
                best[note] = (score, author, base, first.parts, first.covers)
        skip: set[tuple[str, int]] = set()
        for author, seq, note in notes:
            if note not in best:
                continue
            _, by, base, count, covers = best[note]
            own_part = author == by and base <= seq < base + count
            if not own_part and seq <= covers.get(decode_peer_id(author), 0):
                skip.add((author, seq))
        return skip

    def status(self) -> dict[str, Any]:
        row = self.store.query("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM room_log")[0]
        return {
            "size": row["n"],
            "bound": self.limits.per_room_items * self.limits.max_rooms,
            "bytes": row["b"],
            "rooms": len(self.rooms()),
            "rooms_bound": self.limits.max_rooms,
            "stranger_bytes": self._stranger_pool().total,
            "stranger_bytes_bound": self.limits.stranger_bytes,
            "member_bytes_bound": self.limits.member_bytes,
        }
