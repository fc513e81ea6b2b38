"""The catch-up core: what is kept, how inventories are made and paced, what answers them."""

from __future__ import annotations

import random

from mesh.routing.router import Router, RouterConfig
from mesh.runtime.catchup import REFRESH_EVERY, CatchUp, handed_on, kept_in_room_log
from mesh.storage.roomlog import RoomLog
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity

NOW = 1_700_000_000.0
ROOM = b"r" * 32


def node(seed: bytes, rooms: list[bytes] | None = None) -> CatchUp:
    router = Router(Identity.from_seed(seed * 32), NOW, RouterConfig(), random.Random(1))
    return CatchUp(router, RoomLog(Store(None)), lambda: rooms or [])


def note(catch_up: CatchUp, seq: int, type: int = EnvelopeType.NOTE) -> Envelope:
    return catch_up.router.make(
        type, NOW, dest_kind=DestKind.ROOM, dest=ROOM, payload=b"u", seq=seq, hop_limit=8
    )


def test_only_room_envelopes_of_a_stored_type_are_kept() -> None:
    writer = node(b"w")
    assert kept_in_room_log(note(writer, 1))
    assert not kept_in_room_log(note(writer, 2, EnvelopeType.IHAVE))
    direct = writer.router.make(EnvelopeType.DATA, NOW, dest_kind=DestKind.PEER, dest=b"p" * 32)
    assert not kept_in_room_log(direct)


def test_an_inventory_goes_one_link_and_is_not_relayed_back() -> None:
    member = node(b"m", [ROOM])
    inventory = member.inventory(NOW)
    assert inventory is not None
    assert inventory.type == EnvelopeType.INVENTORY and inventory.hop_limit == 1
    assert member.router.seen.seen(inventory.message_id, NOW)  # our own, if it comes back


def test_an_inventory_is_answered_with_what_it_lacks_handed_on_one_link() -> None:
    writer, behind = node(b"w", [ROOM]), node(b"b", [ROOM])
    for seq in (1, 2, 3):
        writer.keep(note(writer, seq), NOW)
    behind.keep(note(writer, 1), NOW)
    inventory = behind.inventory(NOW)
    assert inventory is not None
    sent: dict[bytes, dict[str, int]] = {}
    pages = writer.answer(inventory.payload, sent)
    assert pages is not None
    answer = [Envelope.decode(handed_on(data)) for page in pages for data in page]
    assert [(e.seq, e.hops) for e in answer] == [(2, 1), (3, 1)]
    again = writer.answer(inventory.payload, sent)  # the same inventory repeated: nothing new
    assert again is not None and [d for page in again for d in page] == []


def test_a_malformed_inventory_is_counted_and_not_answered() -> None:
    writer = node(b"w")
    assert writer.answer(b"\xc1not msgpack") is None
    assert writer.router.counters["dropped_bad_inventory"] == 1


def test_a_node_back_on_several_links_sends_its_inventory_to_one_first() -> None:
    member = node(b"m", [ROOM])
    assert member.link_up(1, NOW)
    assert not member.link_up(2, NOW + 0.1)
    assert not member.link_up(3, NOW + 0.2)
    member.link_down(3)
    assert member.next_deadline() > NOW
    assert member.due() == [2]


def test_handed_on_adds_a_hop_within_the_hop_limit() -> None:
    writer = node(b"w")
    envelope = note(writer, 1)
    assert handed_on(envelope.encode()) == envelope.with_hops(1).encode()
    last = envelope.with_hops(envelope.hop_limit - 1).encode()
    assert handed_on(last) == last


def test_a_member_sends_a_routine_inventory_to_one_link_in_turn() -> None:
    member = node(b"m", [ROOM])
    assert member.link_up(1, NOW)  # link 1 got our inventory at its link-up
    assert not member.link_up(2, NOW + 0.1)  # link 2 waits for the pacer, then gets it
    sent = [member.refresh([1, 2, 3], NOW + 0.5)]  # 3 never got one: it goes first
    assert member.refresh([1, 2, 3], NOW + 1.0) == []  # not before REFRESH_EVERY
    for turn in range(1, 4):
        sent.append(member.refresh([1, 2, 3], NOW + 0.5 + turn * REFRESH_EVERY))
    assert sent == [[3], [1], [2], [3]]
    assert member.router.counters["inventories_routine"] == 4
    member.link_down(1)
    assert member.refresh([2, 3], NOW + 0.5 + 4 * REFRESH_EVERY) == [2]
    assert member.refresh([], NOW + 0.5 + 5 * REFRESH_EVERY) == []


def test_a_node_in_no_room_sends_no_routine_inventory() -> None:
    relay = node(b"r")
    assert relay.refresh([1, 2], NOW) == []
    assert relay.refresh([1, 2], NOW + 10 * REFRESH_EVERY) == []
    assert "inventories_routine" not in relay.router.counters
