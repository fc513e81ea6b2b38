"""A burst of CHAT envelopes is taken in together: one transaction, one receipt per author,
each pairwise session read and written once (operation counts, not timings)."""

from __future__ import annotations

import msgpack
import pytest

from chat import history
from chat import receipts as receipts_module
from chat.outbox import MAX_RECEIPT_IDS
from mesh.storage.mailbox import receipt_ids
from mesh.wire.envelope import Envelope, EnvelopeType
from tests.chat.test_messages import Peer, deliver, resign, room_of

BURST = 120


def backlog(a: Peer, b: Peer, count: int) -> tuple[str, list[Envelope]]:
    """A room of `a` and `b`, and `count` messages `a` sent to it that `b` has not taken in
    (b acknowledged no key meanwhile, so each carries a key share on the pair's session)."""
    room = room_of(a, b)
    for i in range(count):
        a.chat.say(room, f"while you were away {i}")
    envelopes = a.take(EnvelopeType.CHAT, b)
    assert len(envelopes) == count
    assert all(msgpack.unpackb(e.payload)[4] is not None for e in envelopes)  # key shares
    b.take(EnvelopeType.RECEIPT)  # those of the room's set-up
    return room, envelopes


def shown(peer: Peer, room: str) -> list[str]:
    return [m["text"] for m in peer.chat.history(room, 10 * BURST)]


def arrive_together(b: Peer, envelopes: list[Envelope]) -> None:
    """What the node does with one routed burst: queue each envelope, then the queue is
    taken once the burst is routed (here at once, instead of at the loop's next turn)."""
    for envelope in envelopes:
        b.chat._queue_chat(envelope)
    b.chat._take_queued()


async def test_a_burst_is_stored_in_one_transaction_and_receipted_once() -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, BURST)
    sessions = b.chat.pairwise.sessions
    bursts, loads, saves = b.chat.bursts, sessions.loads, sessions.saves
    waiting = a.chat.status()["outbox"]
    events: list[tuple[str, dict[str, object]]] = []
    b.chat.listeners.append(lambda kind, data: events.append((kind, data)))
    arrive_together(b, envelopes)
    # front ends still hear of each message, in order, read in pages of views
    assert [data["text"] for kind, data in events if kind == "message"] == [
        f"while you were away {i}" for i in range(BURST)
    ]
    assert shown(b, room) == [f"while you were away {i}" for i in range(BURST)]
    assert b.chat.bursts - bursts == 1  # one transaction for the whole burst
    # every key share opened on the session read once and written once
    assert (sessions.loads - loads, sessions.saves - saves) == (1, 1)
    [receipt] = b.take(EnvelopeType.RECEIPT)  # one signed receipt names them all
    assert receipt_ids(receipt.payload) == [e.message_id for e in envelopes]
    statements: list[str] = []
    a.chat.store.db.conn.set_trace_callback(statements.append)
    deliver(a, [receipt])
    a.chat.store.db.conn.set_trace_callback(None)
    # the author applies it in a few statements for the whole receipt, however many
    # messages it names (the delete from its outbox, the recipients and messages marked
    # delivered, the key acknowledgement, the views for its listeners)
    assert len([s for s in statements if not s.startswith("--")]) <= 20
    assert a.chat.status()["outbox"] == waiting - BURST
    assert {m["status"] for m in a.chat.history(room, BURST)} == {"delivered"}
    a.chat.say(room, "welcome back")  # the key is acknowledged: no share any more
    [after] = a.take(EnvelopeType.CHAT, b)
    assert msgpack.unpackb(after.payload)[4] is None


async def test_the_session_moves_on_so_later_messages_still_open() -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, 10)
    arrive_together(b, envelopes[:5])
    arrive_together(b, envelopes[5:])  # read back from the store what the first burst wrote
    assert len(shown(b, room)) == 10
    assert b.chat.pairwise.sessions.saves >= 2
    # control traffic on the same session opens too: the session was written back
    second = a.chat.rooms.new("second")
    a.chat.rooms.invite(second, b.id)
    invitations = a.take(EnvelopeType.CONTROL, b)
    assert invitations
    deliver(b, invitations)
    assert not [k for k in b.chat.counters if k.startswith("control_rejected")]
    assert b.chat.rooms.conversation(second) is not None


async def test_a_bad_envelope_spoils_none_of_its_burst() -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, 6)
    conv, epoch, index, sealed, share = msgpack.unpackb(envelopes[2].payload)
    altered = bytearray(sealed)
    altered[-1] ^= 0x01
    bad = resign(a, envelopes[2], msgpack.packb([conv, epoch, index, bytes(altered), share]))
    burst = [*envelopes[:2], bad, *envelopes[3:]]
    arrive_together(b, burst)
    assert b.chat.counters["chat_rejected_tampered"] == 1
    assert len(shown(b, room)) == 5
    [receipt] = b.take(EnvelopeType.RECEIPT)
    assert bad.message_id not in receipt_ids(receipt.payload)
    assert len(receipt_ids(receipt.payload)) == 5


async def test_a_burst_larger_than_a_receipt_holds_takes_several_receipts() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = room_of(a, b)
    a.chat.say(room, "first")  # carries the key share
    [first] = a.take(EnvelopeType.CHAT, b)
    b.take(EnvelopeType.RECEIPT)
    arrive_together(b, [first])
    assert len(b.take(EnvelopeType.RECEIPT)) == 1
    # the same envelope queued again and again: each counts as a duplicate to receipt
    copies = [resign(a, first, first.payload) for _ in range(MAX_RECEIPT_IDS + 1)]
    arrive_together(b, copies)
    receipts = b.take(EnvelopeType.RECEIPT)
    assert [len(receipt_ids(r.payload)) for r in receipts] == [MAX_RECEIPT_IDS, 1]
    assert b.chat.counters["chat_duplicate"] == MAX_RECEIPT_IDS + 1


async def test_a_message_twice_in_one_burst_is_a_duplicate_the_second_time() -> None:
    # back after days, a copy parked in the mesh and the author's retry may come together:
    # the second is receipted as a duplicate, not opened again (its key is used up)
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, 3)
    again = resign(a, envelopes[1], envelopes[1].payload)
    arrive_together(b, [*envelopes, again])
    assert shown(b, room) == [f"while you were away {i}" for i in range(3)]
    assert b.chat.counters["chat_duplicate"] == 1
    assert not [k for k in b.chat.counters if k.startswith("chat_rejected")]
    [receipt] = b.take(EnvelopeType.RECEIPT)
    assert receipt_ids(receipt.payload) == [e.message_id for e in [*envelopes, again]]


def statements_of(peer: Peer, envelopes: list[Envelope]) -> list[str]:
    """The SQL statements `peer` runs to take in `envelopes` as one burst (not the ones
    SQLite runs inside triggers)."""
    statements: list[str] = []
    peer.chat.store.db.conn.set_trace_callback(statements.append)
    try:
        arrive_together(peer, envelopes)
    finally:
        peer.chat.store.db.conn.set_trace_callback(None)
    return [s for s in statements if not s.startswith("--")]


async def test_a_burst_reads_each_room_chain_and_count_once() -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, BURST)
    keys = b.chat.keys
    loads, saves = keys.loads, keys.saves
    statements = statements_of(b, envelopes)
    assert len(shown(b, room)) == BURST
    # the sender's chain: read once and written once for the whole burst
    assert (keys.loads - loads, keys.saves - saves) == (1, 1)

    def count(fragment: str) -> int:
        return sum(fragment in s for s in statements)

    assert count("FROM room_events") <= 1  # the room's state: folded once at most
    assert count("FROM conversations") == 1
    assert count("conv_reads") == 1  # the unread count: one statement for the burst
    assert count("DELETE FROM pending") == 0  # nothing was held: nothing to forget
    # which messages are stored already: one query for the burst (one per sender's chain)
    assert count("SELECT idx FROM messages") == 1
    # whether a change waits for its target: asked once, as none does
    assert count("held = 1") == 1
    # the text index: filled once, at the burst's end
    assert count("INSERT INTO messages_fts (rowid") == 1
    # per message: its row of one insert for the burst (which SQLite's trace reports twice
    # a row); the rest is per burst (before bursts: 13 per message; before the duplicate
    # check, the wait for changes and the text index went to the burst: 5, the insert
    # reported three times, once more for the text index's trigger; before the burst's
    # rows were inserted together, without a savepoint each: 4)
    assert len(statements) <= 2 * BURST + 25


async def test_a_burst_takes_no_savepoint_per_message_and_inserts_its_rows_together() -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, BURST)
    inserts = b.chat.timeline.staged_inserts
    statements = statements_of(b, envelopes)
    assert len(shown(b, room)) == BURST
    assert b.chat.counters["chat_received"] == BURST
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 0
    assert b.chat.timeline.staged_inserts - inserts == 1  # one executemany for the burst
    assert b.chat.inbox.redone == 0


async def test_a_refusal_that_wrote_something_takes_the_burst_again_leaving_no_trace() -> None:
    # a message far ahead of its chain keeps the keys of those it skips, and only then
    # fails to open: without a savepoint it would leave them; the burst is taken again
    # with one per message, and the refused message leaves nothing
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, 6)
    arrive_together(b, envelopes[:1])
    b.take(EnvelopeType.RECEIPT)
    conv, epoch, index, sealed, share = msgpack.unpackb(envelopes[4].payload)
    altered = bytearray(sealed)
    altered[-1] ^= 0x01
    bad = resign(a, envelopes[4], msgpack.packb([conv, epoch, index, bytes(altered), share]))
    arrive_together(b, [envelopes[1], bad, envelopes[2], envelopes[3], envelopes[5]])
    assert b.chat.inbox.redone == 1
    assert b.chat.counters["chat_rejected_tampered"] == 1  # counted once, not per try
    assert shown(b, room) == [f"while you were away {i}" for i in (0, 1, 2, 3, 5)]
    [receipt] = b.take(EnvelopeType.RECEIPT)
    assert bad.message_id not in receipt_ids(receipt.payload)
    assert len(receipt_ids(receipt.payload)) == 4
    # the true message 4 still opens: its key was kept when 5 skipped it, not spent
    arrive_together(b, [envelopes[4]])
    assert len(shown(b, room)) == 6


async def test_a_backlog_met_newest_first_costs_a_ratchet_step_or_two_per_message() -> None:
    # back after days, the newest messages may come first (copies parked in the mesh)
    # and the rest behind the chain they moved on: each of those is derived from its
    # chain's share, from where the one before it got to, not from the share's start
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, BURST)
    arrive_together(b, envelopes[-10:])
    steps = b.chat.keys.steps
    lookups = 0
    for start in range(0, 100, 25):  # the first chain's 100, behind: no skipped key for them
        statements = statements_of(b, envelopes[start : start + 25])
        lookups += sum("FROM skipped_keys" in s for s in statements)
    arrive_together(b, envelopes[100:-10])  # these have skipped keys, kept from the first burst
    assert sorted(shown(b, room)) == sorted(f"while you were away {i}" for i in range(BURST))
    assert not [k for k in b.chat.counters if k.startswith("chat_rejected")]
    assert b.chat.keys.steps - steps <= 2 * (BURST - 10)
    # and for those, the chain's skipped keys are read once per burst, not once per message
    assert lookups == 4


async def test_the_receipts_of_a_burst_are_applied_in_one_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, BURST)
    for start in range(0, BURST, 30):  # four bursts at the member: four receipts
        arrive_together(b, envelopes[start : start + 30])
    receipts = b.take(EnvelopeType.RECEIPT)
    assert len(receipts) == 4
    statements: list[str] = []
    monkeypatch.setattr(receipts_module, "AT_ONCE", BURST - 1)  # a catch-up's worth: they wait
    a.chat.store.db.conn.set_trace_callback(statements.append)
    for receipt in receipts:  # as the node hands over one routed burst
        a.chat._queue_receipt(receipt)
    a.chat._take_queued()
    # read at once (one query per receipt), written down once idle (chat.receipts)
    assert statements.count("BEGIN") == 0
    assert len(a.chat.acks) == BURST
    a.chat.acks.settle_all()
    a.chat.store.db.conn.set_trace_callback(None)
    assert statements.count("BEGIN") == 1
    assert {m["status"] for m in a.chat.history(room, BURST)} == {"delivered"}


async def test_a_burst_tells_its_views_without_reading_its_new_rows_again() -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, 30)
    told: list[dict[str, object]] = []
    b.chat.listeners.append(lambda kind, data: told.append(data) if kind == "message" else None)
    statements = statements_of(b, envelopes)
    assert not [s for s in statements if s.startswith("SELECT * FROM messages WHERE msg_id IN")]
    # each view as the front ends would read it from the store
    stored = [history.message(b.chat.store, str(view["id"]), b.chat.me) for view in told]
    assert told == stored
    assert [view["text"] for view in told] == shown(b, room)
