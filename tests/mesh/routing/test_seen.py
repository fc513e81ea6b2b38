"""Tests for mesh.routing.seen: the bounded, expiring dedup cache."""

from __future__ import annotations

import pytest

from mesh.routing.seen import SeenCache

T0 = 1_700_000_000.0


def test_an_added_id_is_seen_until_its_ttl_runs_out() -> None:
    cache = SeenCache(capacity=10, ttl=5.0)
    cache.add(b"x", T0)
    assert cache.seen(b"x", T0)
    assert cache.seen(b"x", T0 + 4.9)
    assert not cache.seen(b"x", T0 + 5.0)
    assert not cache.seen(b"y", T0)


def test_expire_forgets_only_ids_whose_time_is_up() -> None:
    cache = SeenCache(capacity=10, ttl=5.0)
    cache.add(b"old", T0)
    cache.add(b"new", T0 + 3)
    cache.expire(T0 + 5)
    assert len(cache) == 1
    assert cache.seen(b"new", T0 + 5)
    assert cache.evicted == 0  # expiry is not eviction


def test_the_oldest_id_is_evicted_when_full() -> None:
    cache = SeenCache(capacity=2, ttl=60.0)
    for i, key in enumerate([b"a", b"b", b"c"]):
        cache.add(key, T0 + i)
    assert len(cache) == 2
    assert cache.evicted == 1
    assert not cache.seen(b"a", T0 + 3)
    assert cache.seen(b"b", T0 + 3) and cache.seen(b"c", T0 + 3)


def test_adding_an_id_again_refreshes_it_and_its_place() -> None:
    cache = SeenCache(capacity=2, ttl=10.0)
    cache.add(b"a", T0)
    cache.add(b"b", T0 + 1)
    cache.add(b"a", T0 + 8)  # now the newest
    cache.add(b"c", T0 + 9)  # evicts b, not a
    assert cache.seen(b"a", T0 + 17)
    assert not cache.seen(b"b", T0 + 9)
    cache.expire(T0 + 12)
    assert len(cache) == 2  # a (until 18) and c (until 19) remain


@pytest.mark.parametrize(("capacity", "ttl"), [(0, 1.0), (1, 0.0), (-1, 5.0)])
def test_bounds_must_be_positive(capacity: int, ttl: float) -> None:
    with pytest.raises(ValueError):
        SeenCache(capacity, ttl)
