"""A bounded, expiring set of message ids: the dedup cache every node keeps."""

from __future__ import annotations

from collections import deque

#: the bits of an id held: an int below 2**60 is 32 bytes (two 30-bit digits)
MASK = (1 << 60) - 1


def short(key: bytes) -> int:
    """The id as it is held: 60 bits of its first 8 bytes (see :class:`SeenCache`)."""
    return int.from_bytes(key[:8], "big") & MASK


class SeenCache:
    """Remembers ids for `ttl` seconds, at most `capacity` of them (oldest evicted first).

    The ids sit in a plain dict (their expiries) plus a deque in the order they
    were added, which is the order they expire and are evicted in. An
    OrderedDict did the same in one structure but took about twice the memory
    (a linked node and a second hash table per id: 18 MB for 100,000 ids, the
    bulk of a busy relay's growth); a plain dict alone cannot drop its oldest
    entry in constant time. An id added again while still held moves to the
    end: its older place in the deque is left behind as stale and skipped.

    An id is held as an integer of 60 bits of its first 8 bytes: a 32-byte int object
    instead of an 80-byte bytes object (about 4.8 MB less at 100,000 ids). A
    different id taken for one held has a chance of one in 2^60 divided by the
    ids held (1e-13 at 100,000); making one on purpose means about 2^60 signed
    envelopes tried for one id known in advance.
    """

    def __init__(self, capacity: int, ttl: float) -> None:
        if capacity < 1 or ttl <= 0:
            raise ValueError("capacity and ttl must be positive")
        self.capacity = capacity
        self.ttl = ttl
        self.evicted = 0
        self._expiry: dict[int, float] = {}
        self._order: deque[int] = deque()  # ids oldest first, with stale places
        self._stale: dict[int, int] = {}  # id -> its stale places in _order
        # ids added at the same moment (a node handles a burst of frames at one `now`)
        # share one expiry object: a float per id would be a sixth of the cache's memory
        self._last_now = float("nan")
        self._last_expiry = 0.0

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, key: bytes, now: float) -> bool:
        """Return whether `key` was added less than `ttl` seconds before `now`."""
        expiry = self._expiry.get(short(key))
        return expiry is not None and expiry > now

    def add(self, key: bytes, now: float) -> None:
        """Remember `key` until `now + ttl`, evicting the oldest entry when full."""
        held = short(key)
        if now != self._last_now:
            self._last_now = now
            self._last_expiry = now + self.ttl
        expiry = self._expiry
        if held in expiry:  # to the end: its place in _order goes stale
            del expiry[held]
            self._stale[held] = self._stale.get(held, 0) + 1
            if len(self._order) > 2 * self.capacity:
                self._order = deque(expiry)  # only stale places make it that long
                self._stale.clear()
        expiry[held] = self._last_expiry
        self._order.append(held)
        while len(expiry) > self.capacity and self._skip_stale():
            del expiry[self._order.popleft()]
            self.evicted += 1

    def expire(self, now: float) -> None:
        """Forget every entry whose time is up (entries sit in expiry order)."""
        expiry = self._expiry
        while self._skip_stale() and expiry[self._order[0]] <= now:
            del expiry[self._order.popleft()]

    def _skip_stale(self) -> bool:
        """Drop the stale places at the front of `_order`; False when it is empty."""
        order, stale = self._order, self._stale
        while order:
            key = order[0]
            places = stale.get(key)
            if not places:
                return True
            order.popleft()
            if places == 1:
                del stale[key]
            else:
                stale[key] = places - 1
        return False
