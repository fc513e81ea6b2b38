"""A member coming back gets its backlog in bundles: one signature, one check and one receipt
for many messages, each message still its author's, with its own id (operation counts)."""

from __future__ import annotations

import math

import msgpack

from chat.bundles import takes_bundles
from chat.pending import Pending
from mesh.routing.replay import REPLAY_INTERVAL
from mesh.runtime.node import Node
from mesh.storage.mailbox import receipt_ids
from mesh.storage.store import Store
from mesh.wire import bundle
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity
from tests.chat.test_messages import Peer, deliver, room_of

AWAY = 300  # messages sent while the member was away


def away(a: Peer, b: Peer, count: int = AWAY) -> str:
    """A room of `a` and `b`; `a` sent `count` messages that never reached `b`."""
    a.chat.outbox.takes_bundles = lambda peer: peer == b.node.identity.public_key
    room = room_of(a, b)
    deliver(a, b.take(EnvelopeType.RECEIPT))  # those of the room's set-up
    for i in range(count):
        a.chat.say(room, f"m{i}")
    lost = a.take(EnvelopeType.CHAT, b)  # each went alone: one item was due at a time
    assert len(lost) == count
    return room


def back(a: Peer) -> list[Envelope]:
    """`b`'s link comes up: everything waiting is due, and one pass sends it."""
    now = a.node.clock()
    a.chat.outbox.make_all_due(now)
    a.chat.outbox.flush(now)
    return a.take(EnvelopeType.BUNDLE) + a.take(EnvelopeType.CHAT)


def outbox_ids(a: Peer) -> int:
    return int(a.chat.store.query("SELECT COUNT(*) AS n FROM outbox_envelopes")[0]["n"])


def shown(peer: Peer, room: str) -> list[str]:
    return [m["text"] for m in peer.chat.history(room, 10 * AWAY)]


def bundle_of(author: Peer, dest: Peer, payloads: list[bytes]) -> Envelope:
    return author.node.router.make(
        EnvelopeType.BUNDLE,
        author.node.clock(),
        dest_kind=DestKind.PEER,
        dest=dest.node.identity.public_key,
        payload=bundle.pack(payloads),
    )


def test_a_backlog_goes_out_in_few_signed_envelopes_and_comes_back_in_few_receipts() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = away(a, b)
    sent = back(a)
    assert {e.type for e in sent} == {EnvelopeType.BUNDLE}
    # one signature per bundle: as few as the size bound allows, not one per message
    items = [bundle.unpack(e) for e in sent]
    largest = max(len(e.payload) for batch in items for e in batch)
    assert len(sent) <= math.ceil(
        AWAY / (bundle.BUNDLE_BYTES // bundle.packed_size(b"x" * largest))
    )
    assert len(sent) < AWAY / 50
    assert sum(map(len, items)) == AWAY
    assert all(len(e.payload) <= bundle.BUNDLE_BYTES for e in sent)
    for envelope in sent:
        deliver_bundle(b, envelope)
    assert shown(b, room) == [f"m{i}" for i in range(AWAY)]
    assert b.chat.counters["bundle_received"] == len(sent)
    # one receipt per bundle (a burst each here), naming each item and the bundle
    receipts = b.take(EnvelopeType.RECEIPT)
    assert len(receipts) == len(sent)
    for receipt, envelope, carried in zip(receipts, sent, items, strict=True):
        assert receipt_ids(receipt.payload) == [e.message_id for e in carried] + [
            envelope.message_id
        ]
    deliver(a, receipts)
    assert a.chat.status()["outbox"] == 0
    assert {m["status"] for m in a.chat.history(room, AWAY)} == {"delivered"}


def deliver_bundle(peer: Peer, envelope: Envelope) -> None:
    """What the node does with a routed BUNDLE: queue its items; the burst is taken at once
    (no event loop here)."""
    peer.chat._queue_bundle(envelope)


def test_an_item_is_recorded_once_however_often_it_is_tried() -> None:
    a, b = Peer("alice"), Peer("bob")
    away(a, b)
    assert outbox_ids(a) == AWAY  # the singles of the first tries
    first = back(a)
    assert outbox_ids(a) == 2 * AWAY
    second = back(a)  # another try of every item: new bundles, the same item ids
    assert {e.message_id for e in first}.isdisjoint(e.message_id for e in second)
    assert outbox_ids(a) == 2 * AWAY
    assert [e.message_id for x in first for e in bundle.unpack(x)] == [
        e.message_id for x in second for e in bundle.unpack(x)
    ]


def test_a_peer_that_does_not_say_it_takes_bundles_gets_one_envelope_per_message() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = away(a, b, 40)
    a.chat.outbox.takes_bundles = lambda peer: False
    sent = back(a)
    assert [e.type for e in sent] == [EnvelopeType.CHAT] * 40
    deliver(b, sent)
    assert shown(b, room) == [f"m{i}" for i in range(40)]
    assert "bundle_received" not in b.chat.counters


def test_the_address_record_says_who_takes_bundles() -> None:
    chat = Peer("alice")
    assert takes_bundles(chat.node.addresses.own([]))
    bare = Node(Identity.from_seed(bytes(32), "no chat"))  # no chat layer: no field
    assert not takes_bundles(bare.addresses.own([]))
    assert not takes_bundles(None)


def test_a_malformed_bundle_is_refused_and_counted_and_spoils_nothing_else() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = away(a, b, 5)
    sent = back(a)
    for payload in (b"\xc1", msgpack.packb([b"one"]), bundle.pack([b"a", b"a"])):
        deliver_bundle(b, bundle_of(a, b, payload))
    assert b.chat.counters["bundle_rejected_malformed"] == 3
    assert shown(b, room) == [] and not b.take(EnvelopeType.RECEIPT)
    for envelope in sent:
        deliver_bundle(b, envelope)
    assert shown(b, room) == [f"m{i}" for i in range(5)]


def test_an_item_copied_from_another_author_is_not_taken_and_the_others_are() -> None:
    a, b, mallory = Peer("alice"), Peer("bob"), Peer("mallory")
    room = room_of(a, b, mallory)
    b.take(EnvelopeType.RECEIPT)
    a.chat.say(room, "alice's")
    [alices] = a.take(EnvelopeType.CHAT, b)
    mallory.chat.say(room, "mallory's")
    [own] = mallory.take(EnvelopeType.CHAT, b)
    # mallory signs a bundle carrying alice's payload beside her own: read as mallory's, it
    # does not open (its key share is on alice's session with bob, its sealed content names
    # alice as its author), so it waits as a message whose key is unknown does, counted,
    # bounded and expiring (chat/pending.py), shown under nobody and never receipted
    deliver_bundle(b, bundle_of(mallory, b, [alices.payload, own.payload]))
    assert shown(b, room) == ["mallory's"]
    assert b.chat.counters["chat_held"] == 1
    assert b.chat.counters["chat_share_unopened_no_session"] == 1
    [receipt] = b.take(EnvelopeType.RECEIPT)
    copied = bundle.item_id(
        mallory.node.identity.public_key, b.node.identity.public_key, alices.payload
    )
    assert copied not in receipt_ids(receipt.payload)
    deliver(b, [alices])  # alice's own envelope still shows
    assert sorted(shown(b, room)) == ["alice's", "mallory's"]


def test_a_replayed_bundle_is_not_receipted_again_but_a_new_try_is() -> None:
    a, b = Peer("alice"), Peer("bob")
    now = [2_000_000.0]
    b.node.clock = lambda: now[0]
    away(a, b, 5)
    [first] = back(a)
    deliver_bundle(b, first)
    assert len(b.take(EnvelopeType.RECEIPT)) == 1
    deliver_bundle(b, first)  # the same bundle again, within the interval
    assert not b.take(EnvelopeType.RECEIPT)
    assert b.chat.counters["receipt_refused_replay"] == 1
    [retry] = back(a)  # the receipt was lost: the author tries again, in a new bundle
    deliver_bundle(b, retry)
    [receipt] = b.take(EnvelopeType.RECEIPT)
    deliver(a, [receipt])
    assert a.chat.status()["outbox"] == 0
    now[0] += REPLAY_INTERVAL
    deliver_bundle(b, first)  # and after the interval, a replay is receipted again
    assert len(b.take(EnvelopeType.RECEIPT)) == 1


def test_a_held_item_is_taken_back_under_its_own_id() -> None:
    # an item whose room or key is not known yet waits in `pending`; taken back, its
    # receipt must still name the id the author recorded for it
    a, b = Peer("alice"), Peer("bob")
    away(a, b, 2)
    [sent] = back(a)
    item = bundle.unpack(sent)[0]
    pending = Pending(Store(None), {})
    pending.hold(item, "room", 0.0)
    [again] = pending.take("room")
    assert again.message_id == item.message_id
    assert again.payload == item.payload and again.author == item.author
