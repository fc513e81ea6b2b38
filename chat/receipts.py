"""Receipts taken in: what the author's side does when members acknowledge its messages.

A member back after days receipts thousands of messages within seconds, one
receipt per burst it took in. What a receipt acknowledges is read at once
(:class:`Deferred`), so that nothing receipted is sent again; writing it down
waits until no receipt came for a while (the author would otherwise spend
about as much time on the deletes as the member on taking the messages in,
on the same cores, while the member catches up). :func:`apply_receipts` then
writes what they acknowledged in one transaction: it deletes the outbox items
(addressed to each receipt's author), marks those messages delivered to that
member, marks a message delivered once every recipient has it, and records
that the member holds the sending chain (chat.keystore): a few statements per
page of 500 messages, however many there are, not two per message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from chat import history
from chat.keystore import KeyStore
from chat.outbox import Acknowledged, Outbox
from chat.tables import SHOWN_KINDS
from mesh.errors import MeshError
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope, EnvelopeType

#: messages one statement names at most (SQLite's limit on parameters is 32,766)
PAGE = 500
#: items receipted and not written down yet, at most: past it they are written at once
MAX_DEFERRED = 50_000
#: seconds without a receipt after which the receipts are written down
IDLE_S = 0.5
#: items written down in one transaction when idle (one turn of the event loop)
CHUNK = 2_000
#: receipts that acknowledge at most this many items within IDLE_S are written at once, while
#: none wait: a "delivered" mark in a conversation shows without waiting; only a catch-up waits
AT_ONCE = 256

log = logging.getLogger("meshnotes.chat")


class Deferred:
    """Receipts read now, written later: the items they acknowledge, in arrival order.

    Written once no receipt came for IDLE_S (a page of CHUNK items a turn of the event
    loop), at once past MAX_DEFERRED items, and when the chat stops. While none wait,
    receipts are written at once as long as those of the last IDLE_S acknowledge at most
    AT_ONCE items (a conversation); so is everything with no event loop running (a test
    stepping the chat by hand). Meanwhile the outbox sends none of those items
    (Outbox.receipted_items).
    """

    def __init__(
        self,
        store: Store,
        outbox: Outbox,
        keys: KeyStore,
        me: str,
        clock: Callable[[], float],
        counters: dict[str, int],
        emit: Callable[[str, dict[str, Any]], None],
    ) -> None:
        """`emit(kind, data)`: tells the chat's listeners of each message written down
        as delivered (a "status" event with its view)."""
        self.store = store
        self.outbox = outbox
        self.keys = keys
        self.me = me
        self.clock = clock
        self.counters = counters
        self.emit = emit
        self._items: dict[str, Acknowledged] = {}
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        #: items acknowledged since `_window` (the chat's clock), a window of IDLE_S
        self._recent = 0
        self._window: float | None = None
        #: transactions that wrote receipts down (an operation count)
        self.transactions = 0

    def __len__(self) -> int:
        return len(self._items)

    def take(self, receipts: list[Envelope]) -> None:
        """Read what `receipts` acknowledge; from now on those items are not sent again."""
        waiting = len(self._items)
        try:
            for receipt in receipts:
                for item in self.outbox.acknowledged_by(receipt):
                    self._items.setdefault(item.item_id, item)
                    self.outbox.receipted_items.add(item.item_id)
        except MeshError as exc:
            self._failed(exc)
        now = self.clock()
        if self._window is None or now - self._window >= IDLE_S:
            self._window, self._recent = now, 0
        self._recent += len(self._items) - waiting
        if not self._items:
            return
        if len(self._items) >= MAX_DEFERRED or (not waiting and self._recent <= AT_ONCE):
            self.settle_all()
            return
        self._cancel()
        try:
            self._timer = asyncio.get_running_loop().call_later(IDLE_S, self._idle)
        except RuntimeError:  # no event loop: at once
            self.settle_all()

    def settle_all(self) -> None:
        """Write down everything acknowledged so far, now."""
        self._cancel()
        self._settle(None)

    def _idle(self) -> None:
        self._timer = None
        self._settle(CHUNK)
        if self._items:  # the rest at the loop's next turns, a page at a time
            self._timer = asyncio.get_running_loop().call_soon(self._idle)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _settle(self, limit: int | None) -> None:
        ids = list(self._items)[:limit]
        if not ids:
            return
        done = [self._items.pop(item_id) for item_id in ids]
        try:
            apply_receipts(self.store, self.outbox, self.keys, self.me, done, self.clock())
        except MeshError as exc:
            self.outbox.receipted_items.difference_update(ids)  # tried again, receipted again
            self._failed(exc)
            return
        self.transactions += 1
        ids = [item.msg_id for item in done if item.msg_id is not None]
        for view in history.messages(self.store, list(dict.fromkeys(ids)), self.me):
            if view["kind"] in SHOWN_KINDS:  # a change's receipt shows nowhere
                self.emit("status", view)

    def _failed(self, exc: MeshError) -> None:
        self.counters["receipt_store_error"] = self.counters.get("receipt_store_error", 0) + 1
        log.warning("receipts not applied: %s", exc)


def apply_receipts(
    store: Store,
    outbox: Outbox,
    keys: KeyStore,
    me: str,
    done: list[Acknowledged],
    now: float,
) -> None:
    """Write down the items receipts acknowledged, `done`, in one transaction."""
    with store.atomic():
        outbox.forget([item.item_id for item in done])
        by_dest: dict[str, list[str]] = {}
        by_chain: dict[tuple[str | None, int | None, str], list[str]] = {}
        for item in done:
            if item.type != EnvelopeType.CHAT or item.msg_id is None:
                continue
            by_dest.setdefault(item.dest, []).append(item.msg_id)
            by_chain.setdefault((item.conv_id, item.epoch, item.dest), []).append(item.msg_id)
        for dest, msg_ids in by_dest.items():
            for start in range(0, len(msg_ids), PAGE):
                page = msg_ids[start : start + PAGE]
                marks = ",".join("?" * len(page))
                store.execute(
                    "UPDATE recipients SET delivered_at = ?"
                    f" WHERE peer_id = ? AND msg_id IN ({marks})",
                    (now, dest, *page),
                )
                store.execute(
                    f"UPDATE messages SET status = 'delivered' WHERE msg_id IN ({marks})"
                    " AND NOT EXISTS (SELECT 1 FROM recipients r"
                    " WHERE r.msg_id = messages.msg_id AND r.delivered_at IS NULL)",
                    tuple(page),
                )
        for (conv_id, epoch, dest), msg_ids in by_chain.items():
            keys.acknowledged(conv_id, epoch, me, dest, *msg_ids)
