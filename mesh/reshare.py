"""Re-share offers: paths a router will pass back to a neighbour that lost them, after a wait.

Sans-I/O, owned by :class:`~mesh.router.Router`. When a neighbour withdraws
a destination the router still reaches another way, or a relearned path
should reach a link that came up lately, the router *offers* its stored
announce on that link after a random wait of one to two `delay` (rounded up to a multiple of
:data:`GRAIN`). By then a
stale path of its own would have been withdrawn too, and the offer is
cancelled if the neighbour passes it an announce of that destination
meanwhile (the first of several neighbours to offer gives it the path, and
its flood reaches the others). The router decides, when an offer falls due,
whether its path still holds.
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
        self._heap: list[tuple[float, int, bytes]] = []  # (due, link, dest)
        self._due: dict[tuple[int, bytes], float] = {}  # the offers still on

    def __len__(self) -> int:
        return len(self._due)

    def offer(self, link: int, dest: bytes, now: float) -> bool:
        """Offer `dest` on `link`; False when the offer table is full (one already on is kept)."""
        if (link, dest) in self._due:
            return True
        if len(self._due) >= self.capacity:
            return False
        due = math.ceil((now + self.delay * (1.0 + self.rng.random())) / GRAIN) * GRAIN
        self._due[link, dest] = due
        heapq.heappush(self._heap, (due, link, dest))
        return True

    def cancel(self, link: int, dest: bytes) -> None:
        """The neighbour on `link` passed us an announce of `dest`: it has a path."""
        if self._due:
            self._due.pop((link, dest), None)

    def due(self, now: float) -> list[tuple[int, bytes]]:
        """Take the offers that are due and not cancelled, as (link, dest)."""
        out: list[tuple[int, bytes]] = []
        heap, pending = self._heap, self._due
        while heap and heap[0][0] <= now:
            due, link, dest = heapq.heappop(heap)
            if pending.get((link, dest)) != due:
                continue  # cancelled
            del pending[link, dest]
            out.append((link, dest))
        return out

    def next_deadline(self) -> float:
        """When the next offer falls due (infinity when none waits)."""
        heap, pending = self._heap, self._due
        while heap and pending.get((heap[0][1], heap[0][2])) != heap[0][0]:
            heapq.heappop(heap)  # cancelled: no tick for it
        return heap[0][0] if heap else float("inf")
