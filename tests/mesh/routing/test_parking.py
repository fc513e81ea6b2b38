"""Tests for mesh.routing.parking: envelopes waiting for a lost path, expiry, last resort."""

from __future__ import annotations

from mesh.routing.parking import ParkingLot
from mesh.wire.envelope import FLAG_FLOOD, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity
from sim.network import seed_for

AUTHOR = Identity.from_seed(seed_for("author"), "author")
DEST = Identity.from_seed(seed_for("dest"), "dest").public_key


def try_(seq: int, payload: bytes = b"item", flags: int = 0) -> Envelope:
    return Envelope.create(
        AUTHOR,
        EnvelopeType.DATA,
        dest_kind=DestKind.PEER,
        dest=DEST,
        timestamp_ms=1000 * seq,
        seq=seq,
        payload=payload,
        flags=flags,
    )


def lot(counts: dict[str, int], ttl: float = 30.0, capacity: int = 10) -> ParkingLot:
    def count(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    return ParkingLot(ttl, capacity, max_lost=100, count=count)


def test_a_retry_of_a_waiting_item_is_not_parked_twice() -> None:
    counts: dict[str, int] = {}
    parking = lot(counts)
    assert parking.park(try_(1), 0.0) and parking.park(try_(2), 1.0)
    assert len(parking) == 1 and counts == {"parked": 1, "dropped_parked_duplicate": 1}


def test_a_full_lot_refuses_so_that_the_caller_floods() -> None:
    counts: dict[str, int] = {}
    parking = lot(counts, capacity=1)
    assert parking.park(try_(1, b"one"), 0.0)
    assert not parking.park(try_(2, b"two"), 0.0)
    assert counts["park_full"] == 1


def test_an_expired_item_is_dropped_unless_its_author_asked_to_flood_it() -> None:
    counts: dict[str, int] = {}
    parking = lot(counts, ttl=5.0)
    parking.park(try_(1, b"plain"), 0.0)
    parking.park(try_(2, b"urgent"), 0.0)
    flagged = try_(3, b"urgent", flags=FLAG_FLOOD)
    parking.park(flagged, 1.0, last_resort=True)  # the author's third try
    assert parking.next_deadline() == 5.0

    parking.expire(5.0)
    assert parking.due_floods == [flagged]  # the flagged retry, not the first try
    assert counts["dropped_park_expired"] == 1 and counts["park_expired_flooded"] == 1
    assert len(parking) == 0 and not parking.parked


def test_a_found_path_releases_the_first_copy_and_ends_the_lost_mark() -> None:
    counts: dict[str, int] = {}
    parking = lot(counts)
    parking.mark_lost([(DEST, None)], until=90.0)
    assert parking.is_lost(DEST, 1.0)
    first = try_(1)
    parking.park(first, 1.0)
    parking.park(try_(2, flags=FLAG_FLOOD), 2.0, last_resort=True)

    parking.found(DEST)
    assert not parking.is_lost(DEST, 3.0)
    assert parking.release(lambda dest: 7, 3.0) == [(7, first.encode())]
    assert counts["unparked"] == 1 and not parking.due_floods and len(parking) == 0


def test_once_released_or_expired_a_message_parks_again_as_new() -> None:
    counts: dict[str, int] = {}
    parking = lot(counts, ttl=5.0)
    parking.park(try_(1), 0.0)
    parking.expire(5.0)
    assert parking.waiting(try_(2)) is None
    assert parking.park(try_(2), 6.0) and counts["parked"] == 2
    parking.found(DEST)
    assert [data for _, data in parking.release(lambda dest: 7, 7.0)] == [try_(2).encode()]
    assert parking.waiting(try_(3)) is None
    assert parking.park(try_(3), 8.0) and counts["parked"] == 3
    assert "dropped_parked_duplicate" not in counts


def test_a_retry_late_in_the_first_copys_wait_makes_the_message_wait_anew() -> None:
    # seen at 20,000 simulated nodes: the retry that came as the first copy's 30 s ran out
    # was dropped as a duplicate, the first copy expired, and the message was lost
    counts: dict[str, int] = {}
    parking = lot(counts)
    assert parking.park(try_(1), 0.0)
    assert parking.park(try_(2), 25.0)  # 5 s of the wait left
    assert counts["parked_renewed"] == 1 and len(parking) == 1
    parking.expire(40.0)
    assert len(parking) == 1 and "dropped_park_expired" not in counts
    parking.found(DEST)
    released = parking.release(lambda dest: 7, 41.0)
    assert [link for link, _ in released] == [7]  # the first copy, once
    assert counts["unparked"] == 1
    parking.expire(60.0)
    assert len(parking) == 0 and "dropped_park_expired" not in counts
