"""Tests for mesh.routing.reshare: offers fall due after one to two delays, unless cancelled."""

from __future__ import annotations

import random

from mesh.routing.reshare import Offers

DEST = b"d" * 32


def test_an_offer_falls_due_between_one_and_two_delays() -> None:
    offers = Offers(1.0, random.Random(1))
    assert offers.offer(3, DEST, 10.0)
    assert offers.offer(3, DEST, 10.5)  # already on: kept as it was
    assert 11.0 <= offers.next_deadline() < 12.0 and len(offers) == 1
    assert offers.due(10.99) == []
    assert offers.due(12.0) == [(3, DEST)]
    assert len(offers) == 0


def test_a_cancelled_offer_never_falls_due() -> None:
    offers = Offers(1.0, random.Random(1))
    offers.offer(3, DEST, 0.0)
    offers.offer(4, DEST, 0.0)
    offers.cancel(3, DEST)
    assert offers.due(2.0) == [(4, DEST)]


def test_offers_are_bounded() -> None:
    offers = Offers(1.0, random.Random(1), capacity=1)
    assert offers.offer(3, DEST, 0.0)
    assert not offers.offer(4, DEST, 0.0)
    assert offers.due(2.0) == [(3, DEST)]


def test_pending_offers_are_known_and_go_with_their_link() -> None:
    offers = Offers(1.0, random.Random(1))
    offers.offer(1, b"d" * 32, 0.0)
    offers.offer(2, b"d" * 32, 0.0)
    offers.offer(1, b"e" * 32, 0.0)
    assert offers.pending(1, b"d" * 32) and not offers.pending(3, b"d" * 32)
    offers.drop_link(1)
    assert not offers.pending(1, b"d" * 32) and not offers.pending(1, b"e" * 32)
    assert offers.pending(2, b"d" * 32) and len(offers) == 1
    assert offers.due(10.0) == [(2, b"d" * 32)]
    assert offers.next_deadline() == float("inf")
