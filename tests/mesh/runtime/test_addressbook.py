"""The address book: signed address records kept, bounded, expired and passed on."""

from __future__ import annotations

import random

import msgpack

from mesh.routing.router import Router, RouterConfig
from mesh.runtime.addressbook import (
    ADDRESS_HOP_LIMIT,
    MAX_ANNOUNCED_NAME,
    AddressBook,
    announced_name,
)
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import Identity

NOW = 1_700_000_000.0


def book(max_records: int = 10, ttl: float = 3600.0) -> AddressBook:
    me = Identity.from_seed(b"m" * 32)
    router = Router(me, NOW, RouterConfig(), random.Random(1))
    return AddressBook(router, lambda: NOW, max_records=max_records, ttl=ttl)


def record(author: Identity, payload: object, at: float = NOW, hops: int = 0) -> Envelope:
    envelope = Envelope.create(
        author,
        EnvelopeType.ADDRESS,
        timestamp_ms=int(at * 1000),
        seq=1,
        payload=msgpack.packb(payload),
        hop_limit=ADDRESS_HOP_LIMIT,
    )
    return envelope.with_hops(hops)


def peer(i: int) -> Identity:
    return Identity.from_seed(bytes([i]) * 32)


def test_a_well_formed_record_is_kept_and_its_address_dialable() -> None:
    addresses = book()
    alice = peer(1)
    addresses.store(record(alice, {"addrs": ["ws://127.0.0.1:9"]}))
    address = addresses.address_of(alice.public_key)
    assert address is not None and address.url == "ws://127.0.0.1:9"
    assert list(addresses) == [alice.public_key]


def test_a_malformed_record_is_dropped_and_counted() -> None:
    addresses = book()
    for payload in ({"addrs": []}, {"addrs": [7]}, {"other": ["ws://x:1"]}, [1, 2]):
        addresses.store(record(peer(1), payload))
    assert len(addresses) == 0
    assert addresses.router.counters["dropped_bad_address_record"] == 4


def test_only_a_newer_record_replaces_the_one_held() -> None:
    addresses = book()
    newer = record(peer(1), {"addrs": ["ws://127.0.0.1:2"]}, at=NOW)
    addresses.store(newer)
    addresses.store(record(peer(1), {"addrs": ["ws://127.0.0.1:1"]}, at=NOW - 1))
    assert addresses.record(peer(1).public_key) is newer


def test_the_book_is_bounded_by_evicting_the_oldest_record() -> None:
    addresses = book(max_records=3)
    for i in range(1, 5):
        addresses.store(record(peer(i), {"addrs": ["ws://127.0.0.1:1"]}, at=NOW + i))
    assert set(addresses) == {peer(i).public_key for i in (2, 3, 4)}
    assert addresses.status() == {"size": 3, "bound": 3}


def test_records_expire_after_their_time_to_live() -> None:
    addresses = book(ttl=60.0)
    addresses.store(record(peer(1), {"addrs": ["ws://127.0.0.1:1"]}, at=NOW - 61))
    addresses.store(record(peer(2), {"addrs": ["ws://127.0.0.1:1"]}, at=NOW - 59))
    addresses.expire(NOW)
    assert list(addresses) == [peer(2).public_key]


def test_a_new_neighbour_gets_ours_then_the_others_one_hop_further() -> None:
    addresses = book()
    neighbour, far, spent = peer(1), peer(2), peer(3)
    addresses.store(record(neighbour, {"addrs": ["ws://127.0.0.1:1"]}))
    addresses.store(record(far, {"addrs": ["ws://127.0.0.1:2"]}, hops=0))
    addresses.store(record(spent, {"addrs": ["ws://127.0.0.1:3"]}, hops=ADDRESS_HOP_LIMIT - 1))
    sent = addresses.exchange(neighbour.public_key, ["ws://127.0.0.1:7"])
    own, *others = sent
    assert own.author == addresses.router.identity.public_key
    assert msgpack.unpackb(own.payload) == {"addrs": ["ws://127.0.0.1:7"]}
    # not the neighbour's own record back, nor one at the end of its hop limit
    assert [(e.author, e.hops) for e in others] == [(far.public_key, 1)]


def test_a_wildcard_listener_publishes_no_record() -> None:
    addresses = book()
    assert addresses.own(["ws://0.0.0.0:7", "ws://[::]:7"]) is None
    assert addresses.own([]) is None
    once = addresses.own(["ws://127.0.0.1:7"])
    assert once is addresses.own(["ws://127.0.0.1:7"])  # not re-signed


def test_fields_from_above_ride_in_the_record_even_with_nothing_to_dial() -> None:
    addresses = book()
    prekey = [1, bytes(32)]
    addresses.extra = lambda: {"pk": prekey}
    own = addresses.own(["ws://0.0.0.0:7"])
    assert own is not None and msgpack.unpackb(own.payload) == {"addrs": [], "pk": prekey}
    assert addresses.own([]) is own  # unchanged: not re-signed
    prekey = [2, bytes(32)]  # the layer above changed its fields: signed anew
    assert msgpack.unpackb(addresses.own([]).payload)["pk"][0] == 2  # type: ignore[union-attr]
    # such a record from another peer is kept and passed on, and never dialled
    other = book()
    alice = peer(1)
    other.store(record(alice, {"addrs": [], "pk": [1, bytes(32)]}))
    assert list(other) == [alice.public_key]
    assert other.address_of(alice.public_key) is None
    assert other.candidates(set(), lambda _: False) == []
    assert [e.author for e in other.exchange(peer(2).public_key, [])] == [alice.public_key]


def test_the_record_carries_the_first_four_addresses_and_follows_their_changes() -> None:
    addresses = book()
    urls = [f"ws://192.0.2.{i}:7" for i in range(1, 7)]
    record = addresses.own(urls)
    assert record is not None
    assert msgpack.unpackb(record.payload) == {"addrs": urls[:4]}
    moved = addresses.own(["ws://192.0.2.9:7"])  # the interfaces changed: re-signed
    assert moved is not None and msgpack.unpackb(moved.payload) == {"addrs": ["ws://192.0.2.9:7"]}


def test_our_record_announces_our_display_name_cleaned_and_bounded() -> None:
    me = Identity.from_seed(b"m" * 32)
    router = Router(me, NOW, RouterConfig(), random.Random(1))
    addresses = AddressBook(
        router, lambda: NOW, max_records=10, ttl=3600.0, name="  Alice\n\x1b[2J" + "x" * 100
    )
    own = addresses.own(["ws://192.0.2.1:7"])
    assert own is not None
    fields = msgpack.unpackb(own.payload)
    assert fields["addrs"] == ["ws://192.0.2.1:7"]
    assert fields["name"] == ("Alice [2J" + "x" * 100)[:MAX_ANNOUNCED_NAME]
    assert announced_name(own) == fields["name"]


def test_a_record_without_a_name_still_decodes_and_a_bad_name_keeps_the_addresses() -> None:
    addresses = book()
    old = record(peer(1), {"addrs": ["ws://127.0.0.1:9"]})  # as nodes before names sent
    addresses.store(old)
    assert announced_name(old) is None and addresses.name_of(peer(1).public_key) is None
    assert addresses.address_of(peer(1).public_key) is not None
    for name in (7, b"bin", "\x00\x1b"):
        odd = record(peer(2), {"addrs": ["ws://127.0.0.1:8"], "name": name})
        assert announced_name(odd) is None
    named = record(peer(3), {"addrs": ["ws://127.0.0.1:7"], "name": "carol"})
    addresses.store(named)
    assert addresses.name_of(peer(3).public_key) == "carol"
    assert "dropped_bad_address_record" not in addresses.router.counters
