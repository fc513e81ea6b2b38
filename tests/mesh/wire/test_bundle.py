"""Tests for mesh.wire.bundle: what a BUNDLE carries, the ids of its items, what is refused."""

from __future__ import annotations

import msgpack
import pytest

from mesh.errors import EnvelopeError
from mesh.wire import bundle
from mesh.wire.envelope import FLAG_FLOOD, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity

ALICE = Identity.from_seed(bytes(range(32)))
BOB = Identity.from_seed(bytes(range(32, 64)))
T_MS = 1_700_000_000_000


def make(
    payload: bytes, *, type: int = EnvelopeType.BUNDLE, seq: int = 1, flags: int = 0
) -> Envelope:
    return Envelope.create(
        ALICE,
        type,
        dest_kind=DestKind.PEER,
        dest=BOB.public_key,
        timestamp_ms=T_MS,
        seq=seq,
        payload=payload,
        flags=flags,
    )


def test_items_come_out_as_the_chat_envelopes_they_stand_for() -> None:
    items = [b"first", b"second", b"third"]
    envelope = make(bundle.pack(items), flags=FLAG_FLOOD)
    carried = bundle.unpack(envelope)
    assert [e.payload for e in carried] == items
    for e in carried:
        assert e.type == EnvelopeType.CHAT
        assert (e.author, e.dest_kind, e.dest) == (ALICE.public_key, DestKind.PEER, BOB.public_key)
        assert e.flood  # a receipt floods back when the bundle flooded
        assert e.message_id == bundle.item_id(ALICE.public_key, BOB.public_key, e.payload)
    assert len({e.message_id for e in carried} | {envelope.message_id}) == 4


def test_an_item_keeps_its_id_from_one_try_to_the_next() -> None:
    first = bundle.unpack(make(bundle.pack([b"x", b"y"]), seq=1))
    again = bundle.unpack(make(bundle.pack([b"z", b"x"]), seq=9, flags=FLAG_FLOOD))
    assert first[0].message_id == again[1].message_id
    assert first[1].message_id != again[0].message_id
    # and it is the author's and the destination's: the same bytes from another differ
    assert bundle.item_id(BOB.public_key, BOB.public_key, b"x") != first[0].message_id


def test_a_held_item_decodes_back_under_its_own_id() -> None:
    [item, _] = bundle.unpack(make(bundle.pack([b"held", b"other"])))
    back = Envelope.decode(item.encode(), item.message_id)
    assert (back.payload, back.author, back.message_id) == (
        b"held",
        ALICE.public_key,
        item.message_id,
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",  # not msgpack
        msgpack.packb({"items": [b"a", b"b"]}),  # not an array
        msgpack.packb([b"a", "text"]),  # an item that is not bytes
        msgpack.packb([b"alone"]),  # one item is a CHAT envelope's job
        msgpack.packb([]),
        msgpack.packb([b"same", b"same"]),  # an item twice
        msgpack.packb([bytes([i % 256, i // 256]) for i in range(bundle.MAX_ITEMS + 1)]),
    ],
    ids=["not-msgpack", "map", "text-item", "one-item", "empty", "repeated", "too-many"],
)
def test_a_malformed_bundle_is_refused_whole(payload: bytes) -> None:
    with pytest.raises(EnvelopeError):
        bundle.unpack(make(payload))


def test_only_a_bundle_to_a_peer_is_unpacked() -> None:
    with pytest.raises(EnvelopeError):
        bundle.unpack(make(bundle.pack([b"a", b"b"]), type=EnvelopeType.CHAT))
    to_room = Envelope.create(
        ALICE,
        EnvelopeType.BUNDLE,
        dest_kind=DestKind.ROOM,
        dest=bytes(32),
        timestamp_ms=T_MS,
        seq=1,
        payload=bundle.pack([b"a", b"b"]),
    )
    with pytest.raises(EnvelopeError):
        bundle.unpack(to_room)


def test_the_most_items_fit_a_bundle() -> None:
    items = [i.to_bytes(2, "big") for i in range(bundle.MAX_ITEMS)]
    assert len(bundle.unpack(make(bundle.pack(items)))) == bundle.MAX_ITEMS
