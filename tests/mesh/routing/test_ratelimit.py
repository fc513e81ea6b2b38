"""Tests for mesh.routing.ratelimit: token buckets and decaying penalty scores."""

from __future__ import annotations

import pytest

from mesh.routing.ratelimit import PenaltyScore, TokenBucket

T0 = 1_700_000_000.0


def test_a_full_bucket_allows_its_burst_then_refuses() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3.0, now=T0)
    assert [bucket.take(T0) for _ in range(4)] == [True, True, True, False]


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3.0, now=T0)
    for _ in range(3):
        bucket.take(T0)
    assert bucket.take(T0 + 0.5)  # one token back after half a second
    assert not bucket.take(T0 + 0.5)
    assert [bucket.take(T0 + 100) for _ in range(4)] == [True, True, True, False]


def test_a_take_larger_than_the_tokens_spends_nothing() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=3.0, now=T0)
    assert not bucket.take(T0, cost=4.0)
    assert bucket.tokens == 3.0
    assert bucket.take(T0, cost=3.0)


def test_a_clock_stepping_back_adds_no_tokens() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=1.0, now=T0)
    assert bucket.take(T0)
    assert not bucket.take(T0 - 10)
    assert not bucket.take(T0)  # the backward step did not reset the refill clock forward
    assert bucket.take(T0 + 1)


def test_a_penalty_score_adds_up_and_decays_linearly() -> None:
    score = PenaltyScore(decay_per_second=2.0)
    assert score.add(10.0, T0) == 10.0
    assert score.add(5.0, T0 + 1) == pytest.approx(13.0)
    assert score.current(T0 + 2) == pytest.approx(11.0)
    assert score.current(T0 + 100) == 0.0  # never below zero


def test_a_penalty_score_starts_from_zero_at_any_clock() -> None:
    score = PenaltyScore(decay_per_second=1.0)
    assert score.current(T0) == 0.0
    assert score.add(1.0, T0) == 1.0


def test_a_clock_stepping_back_does_not_speed_up_decay() -> None:
    score = PenaltyScore(decay_per_second=1.0)
    score.add(50.0, T0)
    score.add(10.0, T0 - 30)  # decays nothing for the step back, adds the points
    assert score.current(T0) == pytest.approx(60.0)
