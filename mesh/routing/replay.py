"""Replays: an envelope already answered is answered again at most once per interval.

A captured envelope can be sent again and again. The router hands a stored
envelope for us up once more when it comes back (a mailbox handing over a
copy whose receipt was lost), and the chat layer receipts it again, so each
replay made the node sign and send a fresh receipt. :class:`ReplayGuard`
remembers, per key (an envelope id), when it last let one through: within
`interval` seconds of that, the caller refuses it (the router drops the
envelope and charges the link that brought it; chat sends no receipt).
Bounded: past `capacity` keys the oldest are forgotten (a forgotten key costs
one more answer, no more). Sans-I/O: `now` is passed in.
"""

from __future__ import annotations

from collections import OrderedDict

#: seconds within which an envelope already answered is not answered again
REPLAY_INTERVAL = 30.0
#: keys remembered at most
REPLAY_CAPACITY = 10_000


class ReplayGuard:
    """Which keys may be answered now; see the module docstring."""

    def __init__(self, interval: float = REPLAY_INTERVAL, capacity: int = REPLAY_CAPACITY) -> None:
        self.interval = interval
        self.capacity = capacity
        self._last: OrderedDict[bytes, float] = OrderedDict()  # oldest answer first

    def allow(self, key: bytes, now: float) -> bool:
        """True (and remember `now`) unless `key` was allowed less than `interval` ago."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.capacity:
            self._last.popitem(last=False)
        return True

    def seen_recently(self, key: bytes, now: float) -> bool:
        """Whether `key` was allowed less than `interval` ago (nothing remembered)."""
        last = self._last.get(key)
        return last is not None and now - last < self.interval

    def expire(self, now: float) -> None:
        """Forget keys older than the interval (they would be allowed anyway)."""
        while self._last:
            key, last = next(iter(self._last.items()))
            if now - last < self.interval:
                return
            del self._last[key]

    def __len__(self) -> int:
        return len(self._last)
