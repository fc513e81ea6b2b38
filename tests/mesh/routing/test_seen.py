"""Tests for mesh.routing.seen: the bounded, expiring dedup cache."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


class _Model:
    """The cache's rules, the plain way: ids in an OrderedDict, oldest first."""

    def __init__(self, capacity: int, ttl: float) -> None:
        self.capacity, self.ttl, self.evicted = capacity, ttl, 0
        self.ids: OrderedDict[bytes, float] = OrderedDict()

    def add(self, key: bytes, now: float) -> None:
        self.ids.pop(key, None)
        self.ids[key] = now + self.ttl
        while len(self.ids) > self.capacity:
            self.ids.popitem(last=False)
            self.evicted += 1

    def expire(self, now: float) -> None:
        for key in [k for k, t in self.ids.items() if t <= now]:
            del self.ids[key]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6),
    st.lists(st.tuples(st.sampled_from(["add", "expire"]), st.integers(0, 9), st.integers(0, 3))),
)
def test_it_keeps_exactly_the_ids_the_rules_say(capacity: int, steps: list) -> None:
    cache, model = SeenCache(capacity, ttl=4.0), _Model(capacity, ttl=4.0)
    now = T0
    for op, key, dt in steps:
        now += dt  # time only goes forward, as a node's clock does
        if op == "add":
            cache.add(bytes([key]), now)
            model.add(bytes([key]), now)
        else:
            cache.expire(now)
            model.expire(now)
        assert len(cache) == len(model.ids)
        assert cache.evicted == model.evicted
        for k in range(10):
            assert cache.seen(bytes([k]), now) == (model.ids.get(bytes([k]), 0) > now)


def test_adding_one_id_over_and_over_keeps_the_cache_small() -> None:
    cache = SeenCache(capacity=3, ttl=60.0)
    for i in range(1000):
        cache.add(b"same", T0 + i * 0.01)
    assert len(cache) == 1
    assert len(cache._order) <= 2 * cache.capacity + 1  # stale places are dropped


def test_an_id_is_held_in_60_bits_of_its_first_8_bytes() -> None:
    cache = SeenCache(capacity=10, ttl=60.0)
    first = bytes(range(32))
    cache.add(first, T0)
    # the same first 8 bytes (less their top 4 bits): taken for the id held, as documented
    assert cache.seen(first[:8] + bytes(24), T0)
    assert cache.seen(bytes([first[0] | 0xF0]) + first[1:8] + b"?" * 24, T0)
    assert not cache.seen(first[:7] + bytes([first[7] ^ 1]) + first[8:], T0)
    assert all(isinstance(held, int) and held < 2**60 for held in cache._expiry)
