"""A bounded, expiring set of message ids: the dedup cache every node keeps."""

from __future__ import annotations

from collections import OrderedDict


class SeenCache:
    """Remembers ids for `ttl` seconds, at most `capacity` of them (oldest evicted first)."""

    def __init__(self, capacity: int, ttl: float) -> None:
        if capacity < 1 or ttl <= 0:
            raise ValueError("capacity and ttl must be positive")
        self.capacity = capacity
        self.ttl = ttl
        self.evicted = 0
        self._expiry: OrderedDict[bytes, float] = OrderedDict()
        # ids added at the same moment (a node handles a burst of frames at one `now`)
        # share one expiry object: a float per id would be a sixth of the cache's memory
        self._last_now = float("nan")
        self._last_expiry = 0.0

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, key: bytes, now: float) -> bool:
        """Return whether `key` was added less than `ttl` seconds before `now`."""
        expiry = self._expiry.get(key)
        return expiry is not None and expiry > now

    def add(self, key: bytes, now: float) -> None:
        """Remember `key` until `now + ttl`, evicting the oldest entry when full."""
        if now != self._last_now:
            self._last_now = now
            self._last_expiry = now + self.ttl
        self._expiry[key] = self._last_expiry
        self._expiry.move_to_end(key)
        while len(self._expiry) > self.capacity:
            self._expiry.popitem(last=False)
            self.evicted += 1

    def expire(self, now: float) -> None:
        """Forget every entry whose time is up (entries sit in expiry order)."""
        while self._expiry:
            key, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            del self._expiry[key]
