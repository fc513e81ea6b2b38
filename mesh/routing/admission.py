"""Admission: what invalid traffic costs the neighbour that sent it, and bans.

Each link has a token bucket (every frame, and every entry of a TABLE, costs a
token); drops for some reasons cost the peer penalty points (:data:`PENALTIES`),
which decay with time. Past ``ban_threshold`` the peer is banned for
``ban_duration``: its links close and it may not link again until the ban ends.
Sans-I/O, owned by :class:`~mesh.routing.router.Router`.
"""

from __future__ import annotations

from collections.abc import Callable

from mesh.routing.config import RouterConfig
from mesh.routing.ratelimit import PenaltyScore, TokenBucket

#: penalty points per drop reason; reasons not listed cost nothing
PENALTIES: dict[str, float] = {
    "malformed": 20.0,
    "bad_signature": 25.0,
    "future": 5.0,
    "rate_limited": 0.5,
    # an envelope for us handed up again within the replay interval of its last redelivery:
    # a mailbox hands a copy over once per link-up; only a replayer sends it again and again
    "replayed": 1.0,
    # a file chunk that fails its hash-tree check (a layer above reports it: docs/files.md);
    # charged to the chunk's author, which signed it: four in a row ban it
    "bad_chunk": 25.0,
}


class Admission:
    """Penalty scores and bans per peer, within the bounds of `config`."""

    def __init__(self, config: RouterConfig, count: Callable[[str], None]) -> None:
        self.config = config
        self._count = count
        self.penalties: dict[bytes, PenaltyScore] = {}
        #: peer -> when its ban ends
        self.bans: dict[bytes, float] = {}

    def bucket(self, now: float) -> TokenBucket:
        """A full token bucket for a new link."""
        return TokenBucket.full(self.config.link_rate, self.config.link_burst, now)

    def is_banned(self, peer: bytes, now: float) -> bool:
        until = self.bans.get(peer)
        return until is not None and until > now

    def charge(self, peer: bytes, reason: str, now: float) -> bool:
        """Charge `peer` for a drop of `reason`; True when that bans it (from now on)."""
        points = PENALTIES.get(reason, 0.0)
        if not points:
            return False
        score = self.penalties.setdefault(peer, PenaltyScore(self.config.penalty_decay))
        if score.add(points, now) < self.config.ban_threshold:
            return False
        if len(self.bans) >= self.config.max_bans:
            oldest = min(self.bans, key=self.bans.__getitem__)
            del self.bans[oldest]
        self.bans[peer] = now + self.config.ban_duration
        self._count("bans")
        del self.penalties[peer]
        return True

    def expire(self, now: float) -> None:
        """Forget ended bans and penalties decayed to nothing."""
        for peer in [p for p, until in self.bans.items() if until <= now]:
            del self.bans[peer]
        for peer in [p for p, s in self.penalties.items() if s.current(now) == 0.0]:
            del self.penalties[peer]

    def banned(self, now: float) -> list[bytes]:
        """The peers banned at `now`."""
        return [peer for peer, until in self.bans.items() if until > now]
