"""Hop marks: room envelopes that reached this node close to their hop limit, and at what count.

Sans-I/O, owned by :class:`~mesh.routing.router.Router`. Links differ in
latency, so the first copy of a room envelope to arrive is the fastest one,
not the one that crossed the fewest links; every later copy is a duplicate. A
copy that came the long way has few hops left, and members beyond its hop
limit never get the envelope, though a shorter path reaches them
(``python -m benchmarks.hop_reach``: 0.19% of (author, node) pairs missed by a
flood on the 5,000-node graph of docs/scale.md, none of them farther apart
than 8 links).

So a node remembers, for a room envelope whose copy left it at most
`reserve` more links to cross, the hop count it came with. A later copy that
crossed fewer links is passed on again, as if it were the first: it reaches
farther, and each node it improves does the same. Copies far from their limit
are not marked, so the re-sends happen only at the rim of the envelope's
reach, where they matter.
"""

from __future__ import annotations

#: marks kept at most (a few per room envelope near its limit; the oldest go first)
MAX_MARKS = 4096


class HopMarks:
    """Message id -> the fewest links a copy crossed to reach us, for copies near their limit."""

    def __init__(self, reserve: int, capacity: int = MAX_MARKS) -> None:
        self.reserve = reserve
        self.capacity = capacity
        self._hops: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._hops)

    def note(self, message_id: bytes, hops: int, hop_limit: int) -> None:
        """A copy of `message_id` reached us over `hops` links (hop count with ours added)."""
        if hop_limit - hops >= self.reserve:
            self._hops.pop(message_id, None)  # far enough from its limit: nothing to improve
            return
        self._hops[message_id] = hops
        if len(self._hops) > self.capacity:
            del self._hops[next(iter(self._hops))]

    def improves(self, message_id: bytes, hops: int) -> bool:
        """Whether a copy that crossed `hops` links before this one (its hop count on the
        wire) reaches us over fewer links than the marked one."""
        marked = self._hops.get(message_id)
        return marked is not None and hops + 1 < marked
