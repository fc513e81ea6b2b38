"""The parking lot: directed envelopes that wait for a path their router lost.

Sans-I/O, owned by :class:`~mesh.routing.router.Router`. When a path breaks (a link
goes down, or the neighbour it went through withdraws it), the router marks
the destination *lost* for a while; a directed envelope for a lost
destination is held here instead of flooding the mesh, and sent along the
next path learned for it, or dropped after `ttl`. The lot is bounded: when
it is full the router falls back to flooding.

Retries of a waiting envelope (same author, type, destination and payload)
are not parked again; they are found by that key in a dict, not by a scan of
what waits for the destination (an author sending to a member who is away
retries each message, against up to `capacity` parked ones: the scan made
every message sent to a room with a member away cost milliseconds). But when
its author retried with FLOOD (the outbox does so from its third try, to get
around a path that swallows traffic),
that retry is kept as the *last resort*: if no path comes before `ttl`, it
is flooded instead of the waiting copy being dropped (:attr:`due_floods`),
so an author whose path stays lost still reaches a destination that is
online, while a path that returns in time costs one path's transmissions.

Counters (through the `count` callable the router passes in): ``parked``,
``dropped_parked_duplicate`` (``parked_renewed`` when it came late in the first copy's
wait, which then starts again), ``park_full``, ``unparked``,
``dropped_park_expired``, ``park_expired_flooded``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from mesh.wire.envelope import Envelope


@dataclass
class Parked:
    """A directed envelope waiting for a path to its destination."""

    envelope: Envelope
    expires: float
    done: bool = False
    last_resort: Envelope | None = None  # a FLOOD-flagged retry to flood if no path comes


class ParkingLot:
    """Parked envelopes by destination, the destinations whose path was lost, and their timers."""

    def __init__(
        self, ttl: float, capacity: int, max_lost: int, count: Callable[[str], None]
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.max_lost = max_lost
        self.count = count
        #: dest -> its waiting envelopes, in arrival order
        self.parked: dict[bytes, list[Parked]] = {}
        #: (dest, author, type, payload) -> the parked envelope: how a retry is found
        self._keys: dict[tuple[bytes, bytes, int, bytes], Parked] = {}
        #: dest -> (until when its missing path counts as lost, the announce it had)
        self.lost: dict[bytes, tuple[float, bytes | None]] = {}
        self._queue: deque[Parked] = deque()  # in expiry order
        self._size = 0
        self._ready: dict[bytes, None] = {}  # parked dests that have a path again, in order
        #: last-resort retries whose wait ran out: the router floods them
        self.due_floods: list[Envelope] = []

    def __len__(self) -> int:
        return self._size

    def mark_lost(self, dests: list[tuple[bytes, bytes | None]], until: float) -> None:
        """Remember that the paths to these (dest, stored announce) broke, until `until`."""
        lost = self.lost
        for dest, announce in dests:
            lost.pop(dest, None)
            lost[dest] = (until, announce)
        while len(lost) > self.max_lost:
            del lost[next(iter(lost))]

    def found(self, dest: bytes) -> None:
        """A path to `dest` was learned: it is not lost, and what waits for it may go."""
        if self.lost:
            self.lost.pop(dest, None)
        if dest in self.parked:
            self._ready[dest] = None

    def is_lost(self, dest: bytes, now: float) -> bool:
        lost = self.lost.get(dest)
        return lost is not None and lost[0] > now

    def park(self, envelope: Envelope, now: float, last_resort: bool = False) -> bool:
        """Hold a directed envelope until a path to its destination is learned.

        A copy with the same author, type and payload already waiting (a
        retry) is dropped: the first one goes when the path comes. With
        `last_resort` (the author's own FLOOD-flagged try) the envelope is also
        kept to be flooded if the wait runs out. Returns False when the lot is
        full (the caller floods instead).
        """
        waiting = self.waiting(envelope)
        if waiting is not None:
            self.count("dropped_parked_duplicate")
            if last_resort:
                waiting.last_resort = envelope
            if waiting.expires - now < self.ttl / 2:
                # a retry while the first copy's wait runs out: the message waits `ttl` from
                # now in its place (else the retry's parking ends with the old copy's)
                self._renew(waiting, now)
            return True
        if self._size >= self.capacity:
            self.count("park_full")
            return False
        parked = Parked(envelope, now + self.ttl, last_resort=envelope if last_resort else None)
        self.parked.setdefault(envelope.dest, []).append(parked)
        self._keys[_key(envelope)] = parked
        self._queue.append(parked)
        self._size += 1
        self.count("parked")
        return True

    def _renew(self, old: Parked, now: float) -> None:
        """Park `old`'s envelope again for `ttl` from `now` (the queue stays in expiry order)."""
        old.done = True
        fresh = Parked(old.envelope, now + self.ttl, last_resort=old.last_resort)
        waiting = self.parked[old.envelope.dest]
        waiting[waiting.index(old)] = fresh
        self._keys[_key(old.envelope)] = fresh
        self._queue.append(fresh)
        self.count("parked_renewed")

    def waiting(self, envelope: Envelope) -> Parked | None:
        """The parked envelope with the same author, type, destination and payload, if any."""
        return self._keys.get(_key(envelope)) if self._keys else None

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    def release(self, path: Callable[[bytes], int | None], now: float) -> list[tuple[int, bytes]]:
        """(link, encoded envelope) for each parked envelope whose destination has a path again.

        `path(dest)` gives the link of a usable path, or None.
        """
        out: list[tuple[int, bytes]] = []
        for dest in list(self._ready):
            link = path(dest)
            if link is None:
                continue
            for parked in self.parked.pop(dest, []):
                parked.done = True
                self._keys.pop(_key(parked.envelope), None)
                self._size -= 1
                if parked.expires <= now:
                    self._expired(parked)
                    continue
                self.count("unparked")
                out.append((link, parked.envelope.encode()))
        self._ready.clear()
        return out

    def expire(self, now: float) -> None:
        """Drop envelopes parked for longer than `ttl`, and lost marks that ran out."""
        queue = self._queue
        while queue and (queue[0].done or queue[0].expires <= now):
            parked = queue.popleft()
            if parked.done:
                continue
            parked.done = True
            self._keys.pop(_key(parked.envelope), None)
            dest = parked.envelope.dest
            waiting = self.parked.get(dest, [])
            if parked in waiting:
                waiting.remove(parked)
            if not waiting:
                self.parked.pop(dest, None)
                self._ready.pop(dest, None)
            self._size -= 1
            self._expired(parked)
        lost = self.lost
        while lost and next(iter(lost.values()))[0] <= now:
            del lost[next(iter(lost))]

    def _expired(self, parked: Parked) -> None:
        if parked.last_resort is None:
            self.count("dropped_park_expired")
        else:
            self.count("park_expired_flooded")
            self.due_floods.append(parked.last_resort)

    def next_deadline(self) -> float:
        """When the next parked envelope expires (infinity when none waits)."""
        return self._queue[0].expires if self._queue else float("inf")


def _key(envelope: Envelope) -> tuple[bytes, bytes, int, bytes]:
    """What makes two envelopes the same message, retried."""
    return (envelope.dest, envelope.author, envelope.type, envelope.payload)
