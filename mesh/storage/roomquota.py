"""Room log quotas: what the room logs hold, summed up, and the evictions that bound it.

Each room's log is bounded in entries and bytes, and so is the number of
rooms. The logs of rooms this node is a member of share `member_bytes` and
are never evicted for a stranger's room; the logs of all other rooms share
the stranger pool (mesh/storage/pool.py), fair per author.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mesh.storage.pool import ROW_OVERHEAD, StrangerPool
from mesh.storage.store import Store
from mesh.wire.identity import encode_peer_id


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


class RoomQuota:
    """The totals of the `room_log` table, kept in memory, and the evictions that bound it.

    Totals are read from the database on first use and kept up to date here:
    summing a large log at every keep cost more than the keep itself (no other
    code writes the room_log table). Evictions are counted in `counters`.
    """

    def __init__(
        self,
        store: Store,
        limits: RoomLogLimits,
        members: Callable[[], Iterable[bytes]],
        counters: dict[str, int],
    ) -> None:
        self.store = store
        self.limits = limits
        self.members = members
        self.counters = counters
        self._member_ids: tuple[str, ...] = ()
        self._members_until = float("-inf")
        self._pool: StrangerPool | None = None  # read from the database on first use
        self._member_total: int | None = None
        # per-room [entries, bytes] and the number of rooms (None: read again on next use)
        self._totals: dict[str, list[int]] = {}
        self._room_count: int | None = None

    def _count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def is_member(self, room: str, now: float) -> bool:
        """Whether this node is a member of `room` (the rooms are asked at most once a
        MEMBERS_TTL)."""
        if now >= self._members_until or now < self._members_until - MEMBERS_TTL:
            ids = tuple(sorted(encode_peer_id(r) for r in self.members()))
            if ids != self._member_ids:
                self._member_ids = ids
                self._pool = None  # rooms changed sides: tally both again
                self._member_total = None
            self._members_until = now + MEMBERS_TTL
        return room in self._member_ids

    def charge(self, room: str, author: str, size: int, member: bool) -> None:
        """Count an entry just inserted (inside the caller's transaction); evict past the
        limits."""
        self._added(room, size)
        self._enforce_quota(room)
        if member:
            self._added_for_member(size)
        else:
            self._added_for_stranger(author, size)

    def forget(self) -> None:
        """The caller's transaction rolled back: read the totals again on next use."""
        self._totals.clear()
        self._room_count = None
        self._pool = None
        self._member_total = None

    def stranger_total(self) -> int:
        """Bytes the logs of strangers' rooms hold, as the stranger pool charges them."""
        return self._stranger_pool().total

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
