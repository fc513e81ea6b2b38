"""Re-share offers: paths a router will pass back to a neighbour that lost them, after a wait.

Sans-I/O, owned by :class:`~mesh.routing.router.Router`. When a neighbour withdraws
a destination the router still reaches another way, the router *offers* its
stored announce on that link after a random wait of one to two `delay`
(rounded up to a multiple of :data:`GRAIN`). By then a stale path of its own
would have been withdrawn too, and the offer is cancelled if the neighbour
passes it an announce of that destination meanwhile (the first of several
neighbours to offer gives it the path, and its flood reaches the others). The
router decides, when an offer falls due, whether its path still holds.
"""

from __future__ import annotations

import heapq
import math
import random

#: re-shares waiting for their delay, at most
MAX_RESHARE = 10_000

#: due times fall on this grid (seconds, a power of two: exact in binary), so that
#: offers made close together fall due in one tick rather than one tick each
GRAIN = 0.125


class Offers:
    """Pending (link, destination) offers, each due at one time; bounded by `capacity`."""

    def __init__(self, delay: float, rng: random.Random, capacity: int = MAX_RESHARE) -> None:
        self.delay = delay
        self.rng = rng
        self.capacity = capacity
        self._due: dict[tuple[int, bytes], float] = {}  # the offers still on -> due time
        # offers by due time (a grid point each), and a heap of the due times: a node has a
        # handful of them, however many offers it makes
        self._slots: dict[float, dict[tuple[int, bytes], None]] = {}
        self._times: list[float] = []

    def __len__(self) -> int:
        return len(self._due)

    def draw(self, now: float) -> float:
        """A due time for an offer made at `now`: after a random wait of one to two `delay`."""
        return math.ceil((now + self.delay * (1.0 + self.rng.random())) / GRAIN) * GRAIN

    def offer(self, link: int, dest: bytes, now: float, due: float | None = None) -> bool:
        """Offer `dest` on `link` (at `due`, or after a wait); False when the offer table is
        full (one already on is kept)."""
        key = (link, dest)
        if key in self._due:
            return True
        if len(self._due) >= self.capacity:
            return False
        if due is None:
            due = self.draw(now)
        self._due[key] = due
        slot = self._slots.get(due)
        if slot is None:
            slot = self._slots[due] = {}
            heapq.heappush(self._times, due)
        slot[key] = None
        return True

    def cancel(self, link: int, dest: bytes) -> None:
        """The neighbour on `link` passed us an announce of `dest`: it has a path."""
        if self._due:
            due = self._due.pop((link, dest), None)
            if due is not None:
                del self._slots[due][link, dest]

    def pending(self, link: int, dest: bytes) -> bool:
        """Whether an offer of `dest` waits on `link`: its neighbour withdrew `dest` (or never
        had it from us) and has not passed us an announce of it since."""
        return (link, dest) in self._due

    def drop_link(self, link: int) -> None:
        """The link went down: its offers go (a later link may get its id)."""
        for key in [k for k in self._due if k[0] == link]:
            del self._slots[self._due.pop(key)][key]

    def due(self, now: float) -> list[tuple[int, bytes]]:
        """Take the offers that are due and not cancelled, as (link, dest), oldest first."""
        out: list[tuple[int, bytes]] = []
        times = self._times
        while times and times[0] <= now:
            for key in self._slots.pop(heapq.heappop(times)):
                del self._due[key]
                out.append(key)
        return out

    def next_deadline(self) -> float:
        """When the next offer falls due (infinity when none waits)."""
        times, slots = self._times, self._slots
        while times and not slots[times[0]]:
            del slots[heapq.heappop(times)]  # every offer in it was cancelled: no tick
        return times[0] if times else float("inf")
