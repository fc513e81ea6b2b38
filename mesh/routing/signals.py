"""Ephemeral signals: what relays pass on for typing, presence and cursors, and no more.

A SIGNAL envelope (mesh/wire/envelope.py) is room- or peer-addressed like any
payload, and forwarded the same way, but it is never kept: no mailbox, no room
log, no parking for a path, no receipt. What it says is stale in seconds, so a
signal that cannot go on now is dropped (counted), never held.

It also costs relays little: each author gets a small token bucket at every
node (`RATE` a second, `BURST` at once), and a signal's payload is at most
`MAX_PAYLOAD` bytes; past either it is dropped and counted, without charging
the neighbour that passed it on (it may only be relaying someone else's).
"""

from __future__ import annotations

from collections import OrderedDict

from mesh.routing.ratelimit import TokenBucket

#: signals a second one author may have passed on by a node, and at once
RATE = 10.0
BURST = 30.0
#: the largest signal payload (a sealed cursor or typing notice is a few hundred bytes)
MAX_PAYLOAD = 4096
#: authors whose buckets are remembered (the least recently heard are forgotten first)
MAX_AUTHORS = 10_000


class SignalGate:
    """Per-author budgets for the signals a node passes on or takes."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[bytes, TokenBucket] = OrderedDict()

    def admit(self, author: bytes, size: int, now: float) -> str | None:
        """None if a signal of `size` bytes by `author` may go on; else the reason to drop it."""
        if size > MAX_PAYLOAD:
            return "signal_too_large"
        bucket = self._buckets.get(author)
        if bucket is None:
            bucket = self._buckets[author] = TokenBucket.full(RATE, BURST, now)
            if len(self._buckets) > MAX_AUTHORS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(author)
        return None if bucket.take(now) else "signal_rate"

    def __len__(self) -> int:
        return len(self._buckets)
