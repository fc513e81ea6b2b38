"""Receipts taken in: what the author's side does when members acknowledge its messages.

A member back after days receipts thousands of messages within seconds, one
receipt per burst it took in. :func:`apply_receipts` takes the receipts that arrived
together in one transaction: it deletes the outbox items they name (addressed
to each receipt's author), marks those messages delivered to that member, marks
a message delivered once every recipient has it, and records that the member
holds the sending chain (chat.keystore): a few statements per page of 500
messages, however many there are, not two per message.
"""

from __future__ import annotations

from collections.abc import Iterable

from chat.keystore import KeyStore
from chat.outbox import Acknowledged, Outbox
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope, EnvelopeType

#: messages one statement names at most (SQLite's limit on parameters is 32,766)
PAGE = 500


def apply_receipts(
    store: Store,
    outbox: Outbox,
    keys: KeyStore,
    me: str,
    receipts: Iterable[Envelope],
    now: float,
) -> list[Acknowledged]:
    """Apply `receipts` in one transaction; return the items they acknowledged, in order."""
    done: list[Acknowledged] = []
    with store.atomic():
        for receipt in receipts:
            done.extend(outbox.acknowledge(receipt))
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
    return done
