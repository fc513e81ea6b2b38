"""Receipts are read at once and written down when the author is idle (chat.receipts):
nothing receipted goes out again meanwhile, and all of it is written in the end. A lone
receipt is written at once."""

from __future__ import annotations

import pytest

from chat import receipts
from mesh.wire.envelope import EnvelopeType
from tests.chat.test_inbox import BURST, arrive_together, backlog
from tests.chat.test_messages import Peer
from tests.waiting import wait_until


def receipted_backlog(count: int, stream: bool = True) -> tuple[Peer, str]:
    """`alice` sent `count` messages to a room with `bob`, who took them in; alice has
    taken bob's receipts (as the node hands them over). With `stream`, a receipt came
    just before them, so they are not lone: they wait to be written down."""
    a, b = Peer("alice"), Peer("bob")
    room, envelopes = backlog(a, b, count)
    for start in range(0, count, 30):
        arrive_together(b, envelopes[start : start + 30])
    if stream:
        a.chat.acks.take([])  # the receipt just before (acknowledging nothing of these)
    for receipt in b.take(EnvelopeType.RECEIPT):
        a.chat._queue_receipt(receipt)
    a.chat._take_queued()
    return a, room


def chat_items(a: Peer) -> int:
    """CHAT items in alice's outbox (the room's set-up left control items unreceipted)."""
    rows = a.chat.store.query(
        "SELECT COUNT(*) AS n FROM outbox WHERE type = ?", (EnvelopeType.CHAT,)
    )
    return int(rows[0]["n"])


def statuses(a: Peer, room: str) -> set[str]:
    return {m["status"] for m in a.chat.history(room, 10 * BURST)}


async def test_receipts_are_written_down_once_no_receipt_came_for_a_while() -> None:
    a, room = receipted_backlog(BURST)
    assert len(a.chat.acks) == BURST
    assert a.chat.acks.transactions == 0
    assert statuses(a, room) == {"pending"}  # not written down yet
    assert chat_items(a) == BURST
    await wait_until(lambda: not len(a.chat.acks), what="receipts written down when idle")
    assert statuses(a, room) == {"delivered"}
    assert chat_items(a) == 0
    assert a.chat.acks.transactions == 1


async def test_nothing_receipted_goes_out_again_while_its_receipt_waits() -> None:
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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receipts, "CHUNK", 50)
    a, room = receipted_backlog(BURST)
    await wait_until(lambda: not len(a.chat.acks), what="receipts written down when idle")
    assert a.chat.acks.transactions == 3  # 50 + 50 + 20, one turn of the loop each
    assert statuses(a, room) == {"delivered"}


async def test_past_the_bound_receipts_are_written_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(receipts, "MAX_DEFERRED", 30)
    a, room = receipted_backlog(BURST)
    assert len(a.chat.acks) == 0  # 120 items read: past the bound, written without waiting
    assert a.chat.acks.transactions == 1
    assert statuses(a, room) == {"delivered"}


def test_without_an_event_loop_receipts_are_written_at_once() -> None:
    a, room = receipted_backlog(BURST)
    assert len(a.chat.acks) == 0
    assert statuses(a, room) == {"delivered"}


async def test_a_lone_receipt_is_written_down_at_once() -> None:
    a, room = receipted_backlog(BURST, stream=False)  # 120 items, no receipt before
    assert len(a.chat.acks) == 0
    assert a.chat.acks.transactions == 1
    assert statuses(a, room) == {"delivered"}
    assert chat_items(a) == 0


async def test_a_lone_receipt_of_many_items_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receipts, "LONE", BURST - 1)
    a, room = receipted_backlog(BURST, stream=False)
    assert len(a.chat.acks) == BURST
    assert statuses(a, room) == {"pending"}
    await wait_until(lambda: not len(a.chat.acks), what="receipts written down when idle")
    assert statuses(a, room) == {"delivered"}
