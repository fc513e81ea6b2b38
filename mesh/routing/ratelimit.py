"""Token buckets and penalty scores: how a node throttles and bans misbehaving links."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """A classic token bucket: `rate` tokens per second, holding at most `burst`."""

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend `cost` tokens if there are enough; return whether it was allowed."""
        # every frame a node gets passes here: plain comparisons, no max()/min() calls
        if now > self.updated:
            tokens = self.tokens + (now - self.updated) * self.rate
            self.tokens = tokens if tokens < self.burst else self.burst
            self.updated = now
        # a clock stepping back must not move the refill origin back (free tokens later)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


@dataclass
class PenaltyScore:
    """A misbehaviour score that decays linearly; crossing the threshold means a ban."""

    decay_per_second: float
    score: float = 0.0
    updated: float = 0.0

    def add(self, points: float, now: float) -> float:
        """Add points (after decaying the score to `now`) and return the new score."""
        self.score = self.current(now) + points
        self.updated = max(self.updated, now)  # as in TokenBucket.take: no free decay
        return self.score

    def current(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated)
        return max(0.0, self.score - elapsed * self.decay_per_second)
