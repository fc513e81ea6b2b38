"""Tests for chat.outbox: transmission, back-off, flooding, expiry and receipts."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from chat.outbox import FLUSH_PAGE, Acknowledged, Outbox, RetryPolicy
from chat.tables import MIGRATIONS
from mesh.routing.router import Router
from mesh.storage.store import Store
from mesh.wire.envelope import FLAG_FLOOD, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity

ALICE = Identity.from_seed(bytes(range(32)))
BOB = Identity.from_seed(bytes(range(32, 64)))
CAROL = Identity.from_seed(bytes(range(64, 96)))
MALLORY = Identity.from_seed(bytes(range(96, 128)))
T0 = 1_700_000_000.0
SEED = 7
POLICY = RetryPolicy(initial_delay=2.0, max_delay=30.0, flood_after=2, ttl=1000.0)


class FakeNode:
    """Stands in for the node: `make` signs as alice and records its arguments, `send` collects."""

    def __init__(self) -> None:
        self.router = Router(ALICE, now=T0)
        self.made: list[dict[str, Any]] = []
        self.sent: list[Envelope] = []

    def make(self, type: int, now: float, **kwargs: Any) -> Envelope:
        self.made.append({"type": type, "now": now, **kwargs})
        return self.router.make(type, now, **kwargs)

    def send(self, envelope: Envelope) -> None:
        self.sent.append(envelope)


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def outbox(node: FakeNode) -> Outbox:
    return Outbox(Store(None), node.make, node.send, POLICY, random.Random(SEED))


def receipt(author: Identity, *acked: Envelope) -> Envelope:
    return Envelope.create(
        author,
        EnvelopeType.RECEIPT,
        dest_kind=DestKind.PEER,
        dest=ALICE.public_key,
        timestamp_ms=int(T0 * 1000),
        seq=1,
        payload=b"".join(e.message_id for e in acked),
    )


def test_flush_sends_one_envelope_per_due_item(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.add("i2", CAROL.peer_id, EnvelopeType.CONTROL, b"two", T0)
    assert outbox.pending_count() == 2
    assert outbox.flush(T0) == 2
    assert sorted((e.dest, e.type, e.payload) for e in node.sent) == sorted(
        [
            (BOB.public_key, EnvelopeType.CHAT, b"one"),
            (CAROL.public_key, EnvelopeType.CONTROL, b"two"),
        ]
    )
    assert all(e.author == ALICE.public_key and e.dest_kind == DestKind.PEER for e in node.sent)
    assert all(e.flags == 0 for e in node.sent)
    # nothing is due again at once, and sent items wait for their receipts
    assert outbox.flush(T0) == 0
    assert len(node.sent) == 2
    assert outbox.pending_count() == 2


def test_adding_an_item_twice_queues_it_once(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"other", T0)
    assert outbox.flush(T0) == 1
    assert node.sent[0].payload == b"one"


def test_an_item_added_for_later_is_not_sent_before_it_is_due(outbox: Outbox) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0 + 10)
    assert outbox.flush(T0) == 0
    assert outbox.next_due() == T0 + 10
    assert outbox.flush(T0 + 10) == 1


def test_retries_back_off_exponentially_with_jitter_up_to_max_delay(
    outbox: Outbox, node: FakeNode
) -> None:
    mirror = random.Random(SEED)  # draws the same jitter the outbox will
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    now, delays = T0, []
    for tries in range(7):
        assert outbox.flush(now) == 1
        due = outbox.next_due()
        assert due is not None
        expected = min(POLICY.max_delay, POLICY.initial_delay * 2**tries) * mirror.uniform(0.8, 1.2)
        assert due - now == pytest.approx(expected)
        delays.append(due - now)
        assert outbox.flush(due - 0.001) == 0  # not before it is due
        now = due
    assert len(node.sent) == 7
    # about twice as long each time until the cap, and never past it (jitter included)
    for before, after in itertools.pairwise(delays[:4]):
        assert 2 * 0.8 / 1.2 <= after / before <= 2 * 1.2 / 0.8
    assert all(d <= POLICY.max_delay * 1.2 for d in delays)
    assert all(d >= POLICY.max_delay * 0.8 for d in delays[-2:])


def test_transmissions_are_flagged_flood_from_the_third_try(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    now = T0
    for _ in range(4):
        outbox.flush(now)
        now = outbox.next_due() or now
    assert [e.flood for e in node.sent] == [False, False, True, True]
    assert [call["flags"] for call in node.made] == [0, 0, FLAG_FLOOD, FLAG_FLOOD]


def test_each_retransmission_is_a_new_envelope(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    now = T0
    for _ in range(3):
        outbox.flush(now)
        now = outbox.next_due() or now
    assert len({e.message_id for e in node.sent}) == 3
    assert {e.payload for e in node.sent} == {b"one"}


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_receipt_for_any_retransmission_acknowledges_the_item(
    outbox: Outbox, node: FakeNode, which: int
) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    now = T0
    for _ in range(3):
        outbox.flush(now)
        now = outbox.next_due() or now
    done = outbox.acknowledge(receipt(BOB, node.sent[which]))
    assert [a.item_id for a in done] == ["i1"]
    assert outbox.pending_count() == 0
    assert outbox.store.query("SELECT * FROM outbox_envelopes") == []


def test_a_receipt_naming_every_retransmission_acknowledges_once(
    outbox: Outbox, node: FakeNode
) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.flush(T0)
    outbox.make_all_due(T0 + 1)
    outbox.flush(T0 + 1)
    assert len(node.sent) == 2
    assert len(outbox.acknowledge(receipt(BOB, *node.sent))) == 1


def test_acknowledge_removes_the_item_and_reports_what_it_was(
    outbox: Outbox, node: FakeNode
) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0, msg_id="m1", conv_id="c1", epoch=3)
    outbox.add("i2", BOB.peer_id, EnvelopeType.CHAT, b"two", T0)
    outbox.flush(T0)
    first = next(e for e in node.sent if e.payload == b"one")
    assert outbox.acknowledge(receipt(BOB, first)) == [
        Acknowledged("i1", "m1", "c1", 3, BOB.peer_id, int(EnvelopeType.CHAT))
    ]
    assert outbox.pending_count() == 1
    # a second copy of the same receipt finds nothing left to acknowledge
    assert outbox.acknowledge(receipt(BOB, first)) == []


def test_a_receipt_from_another_author_acknowledges_nothing(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.flush(T0)
    assert outbox.acknowledge(receipt(MALLORY, *node.sent)) == []
    assert outbox.acknowledge(receipt(ALICE, *node.sent)) == []
    assert outbox.pending_count() == 1
    assert len(outbox.acknowledge(receipt(BOB, *node.sent))) == 1


def test_a_receipt_naming_unknown_ids_acknowledges_nothing(outbox: Outbox) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.flush(T0)
    bogus = Envelope.create(
        BOB,
        EnvelopeType.RECEIPT,
        dest_kind=DestKind.PEER,
        dest=ALICE.public_key,
        timestamp_ms=0,
        seq=1,
        payload=bytes(32) + b"\xff" * 40,
    )
    assert outbox.acknowledge(bogus) == []
    assert outbox.pending_count() == 1


def test_make_all_due_sends_everything_again_now(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.add("i2", CAROL.peer_id, EnvelopeType.CHAT, b"two", T0)
    outbox.flush(T0)
    assert outbox.flush(T0 + 1) == 0
    outbox.make_all_due(T0 + 1)
    assert outbox.next_due() == T0 + 1
    assert outbox.flush(T0 + 1) == 2
    assert len(node.sent) == 4


def test_make_all_due_for_one_destination_leaves_the_others(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.add("i2", CAROL.peer_id, EnvelopeType.CHAT, b"two", T0)
    outbox.flush(T0)
    outbox.make_all_due(T0 + 1, dest=CAROL.peer_id)
    assert outbox.flush(T0 + 1) == 1
    assert node.sent[-1].dest == CAROL.public_key


def test_items_expire_after_their_ttl(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.add("i2", BOB.peer_id, EnvelopeType.CHAT, b"two", T0 + 500)
    outbox.make_all_due(T0 + POLICY.ttl)
    assert outbox.flush(T0 + POLICY.ttl) == 1  # i1 expired at exactly its ttl
    assert [e.payload for e in node.sent] == [b"two"]
    assert outbox.pending_count() == 1
    assert outbox.flush(T0 + 500 + POLICY.ttl) == 0
    assert outbox.pending_count() == 0
    assert outbox.next_due() is None


def test_expiry_also_forgets_the_envelope_ids_of_expired_items(outbox: Outbox) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.add("i2", BOB.peer_id, EnvelopeType.CHAT, b"two", T0 + 500)
    outbox.flush(T0 + 500)
    outbox.flush(T0 + POLICY.ttl)
    rows = outbox.store.query("SELECT item_id FROM outbox_envelopes")
    assert {r["item_id"] for r in rows} == {"i2"}


def test_an_item_expired_since_the_last_sweep_is_not_sent(outbox: Outbox, node: FakeNode) -> None:
    outbox.add("i1", BOB.peer_id, EnvelopeType.CHAT, b"one", T0)
    outbox.add("i2", BOB.peer_id, EnvelopeType.CHAT, b"two", T0 + 1)
    outbox.flush(T0 + POLICY.ttl - 1)  # a sweep, with nothing expired yet
    node.sent.clear()
    outbox.make_all_due(T0 + POLICY.ttl)
    assert outbox.flush(T0 + POLICY.ttl) == 1  # within the sweep interval: i1 is only skipped
    assert [e.payload for e in node.sent] == [b"two"]


def test_a_full_page_of_due_items_goes_out_in_one_transaction_sent_after_it_commits(
    node: FakeNode,
) -> None:
    store = Store(None)
    outbox = Outbox(store, node.make, node.send, POLICY, random.Random(SEED))
    for i in range(FLUSH_PAGE + 20):
        outbox.add(f"i{i}", BOB.peer_id, EnvelopeType.CHAT, b"backlog %d" % i, T0)
    outbox.flush(T0 - 1)  # nothing due yet: only the sweep of expired items runs
    committed: list[bool] = []
    outbox.send = lambda envelope: committed.append(not store.db.conn.in_transaction)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    assert outbox.flush(T0) == FLUSH_PAGE
    store.db.conn.set_trace_callback(None)
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN"]
    assert len(committed) == FLUSH_PAGE and all(committed)
    assert outbox.flush(T0) == 20  # the rest, on the next flush


def test_after_a_link_comes_up_everything_goes_again_in_the_order_it_was_queued(
    outbox: Outbox, node: FakeNode
) -> None:
    for i in range(40):
        outbox.add(f"i{i:02}", BOB.peer_id, EnvelopeType.CHAT, b"%02d" % i, T0)
    outbox.flush(T0)
    outbox.flush(T0 + 3)  # the second tries, due at jittered times
    node.sent.clear()
    later = T0 + 500  # every item has been due for a while, each since another moment
    outbox.make_all_due(later)
    outbox.flush(later)
    assert [e.payload for e in node.sent] == [b"%02d" % i for i in range(40)]


def test_a_receipt_finds_an_items_envelope_ids_without_reading_them_all() -> None:
    # every try of an item adds an envelope id: a member away for days leaves ~100,000
    store = Store(None)
    store.migrate_component("chat", MIGRATIONS)
    plan = store.db.conn.execute(
        "EXPLAIN QUERY PLAN DELETE FROM outbox_envelopes WHERE item_id IN (?, ?)", ("a", "b")
    ).fetchall()
    assert [row[3] for row in plan] == [
        "SEARCH outbox_envelopes USING INDEX outbox_envelopes_item (item_id=?)"
    ]
