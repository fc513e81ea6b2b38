"""Receipts are read at once and written down when the author is idle (chat.receipts):
nothing receipted goes out again meanwhile, and all of it is written in the end. The few
receipts of a conversation are written at once."""

from __future__ import annotations

import pytest

from chat import receipts
from mesh.wire.envelope import EnvelopeType
from tests.chat.test_inbox import BURST, arrive_together, backlog
from tests.chat.test_messages import Peer
from tests.waiting import wait_until


def receipted_backlog(count: int) -> tuple[Peer, str]:
    """`alice` sent `count` messages to a room with `bob`, who took them in; alice has
    taken bob's receipts (as the node hands them over)."""
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, count)
    for start in range(0, count, 30):
        arrive_together(b, envelopes[start : start + 30])
    for receipt in b.take(EnvelopeType.RECEIPT):
        a.chat._queue_receipt(receipt)
    a.chat._take_queued()
    return a, room


@pytest.fixture
def catching_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Receipts as a member catching up sends them: more than AT_ONCE items within IDLE_S."""
    monkeypatch.setattr(receipts, "AT_ONCE", BURST - 1)


def chat_items(a: Peer) -> int:
    """CHAT items in alice's outbox (the room's set-up left control items unreceipted)."""
    rows = a.chat.store.query(
        "SELECT COUNT(*) AS n FROM outbox WHERE type = ?", (EnvelopeType.CHAT,)
    )
    return int(rows[0]["n"])


def statuses(a: Peer, room: str) -> set[str]:
    return {m["status"] for m in a.chat.history(room, 10 * BURST)}


async def test_receipts_are_written_down_once_no_receipt_came_for_a_while(
    catching_up: None,
) -> None:
    a, room = receipted_backlog(BURST)
    assert len(a.chat.acks) == BURST
    assert a.chat.acks.transactions == 0
    assert statuses(a, room) == {"pending"}  # not written down yet
    assert chat_items(a) == BURST
    await wait_until(lambda: not len(a.chat.acks), what="receipts written down when idle")
    assert statuses(a, room) == {"delivered"}
    assert chat_items(a) == 0
    assert a.chat.acks.transactions == 1


async def test_nothing_receipted_goes_out_again_while_its_receipt_waits(
    catching_up: None,
) -> None:
    a, room = receipted_backlog(BURST)
    a.take(EnvelopeType.CHAT)
    a.take(EnvelopeType.BUNDLE)
    now = a.node.clock()
    a.chat.outbox.make_all_due(now)  # a link came up: everything due again
    a.chat.outbox.flush(now)
    assert not a.take(EnvelopeType.CHAT) and not a.take(EnvelopeType.BUNDLE)
    assert len(a.chat.acks) == BURST  # still waiting to be written down
    # and not due again before they are: the next flush does not even read them
    due = a.chat.store.query("SELECT COUNT(*) AS n FROM outbox WHERE next_try <= ?", (now,))
    assert due[0]["n"] == 0
    a.chat.acks.settle_all()
    assert chat_items(a) == 0
    assert statuses(a, room) == {"delivered"}


async def test_when_idle_receipts_are_written_a_page_at_a_time(
    monkeypatch: pytest.MonkeyPatch, catching_up: None
) -> None:
    monkeypatch.setattr(receipts, "CHUNK", 50)
    a, room = receipted_backlog(BURST)
    await wait_until(lambda: not len(a.chat.acks), what="receipts written down when idle")
    assert a.chat.acks.transactions == 3  # 50 + 50 + 20, one turn of the loop each
    assert statuses(a, room) == {"delivered"}


async def test_past_the_bound_receipts_are_written_at_once(
    monkeypatch: pytest.MonkeyPatch, catching_up: None
) -> None:
    monkeypatch.setattr(receipts, "MAX_DEFERRED", 30)
    a, room = receipted_backlog(BURST)
    assert len(a.chat.acks) == 0  # 120 items read: past the bound, written without waiting
    assert a.chat.acks.transactions == 1
    assert statuses(a, room) == {"delivered"}


def test_without_an_event_loop_receipts_are_written_at_once(catching_up: None) -> None:
    a, room = receipted_backlog(BURST)
    assert len(a.chat.acks) == 0
    assert statuses(a, room) == {"delivered"}


async def test_the_receipts_of_a_conversation_are_written_down_at_once() -> None:
    a, room = receipted_backlog(BURST)  # 120 items within IDLE_S, none waiting
    assert len(a.chat.acks) == 0
    assert a.chat.acks.transactions == 1
    assert statuses(a, room) == {"delivered"}
    assert chat_items(a) == 0


async def test_a_receipt_while_others_wait_waits_with_them(catching_up: None) -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, BURST + 1)
    arrive_together(b, envelopes[:BURST])
    arrive_together(b, envelopes[BURST:])
    first, last = b.take(EnvelopeType.RECEIPT)
    a.chat.acks.take([first])  # a catch-up's worth: it waits
    a.chat.acks.take([last])  # one item, but others wait: so does it
    assert len(a.chat.acks) == BURST + 1
    assert a.chat.acks.transactions == 0
    await wait_until(lambda: not len(a.chat.acks), what="receipts written down when idle")
    assert statuses(a, room) == {"delivered"}


async def test_receipts_one_after_another_in_a_conversation_are_each_written_at_once() -> None:
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, 3)
    for envelope in envelopes:  # a quick exchange: three receipts within IDLE_S
        arrive_together(b, [envelope])
        (receipt,) = b.take(EnvelopeType.RECEIPT)
        a.chat.acks.take([receipt])
        assert len(a.chat.acks) == 0  # written down, not waiting for a pause
    assert a.chat.acks.transactions == 3
    assert statuses(a, room) == {"delivered"}
