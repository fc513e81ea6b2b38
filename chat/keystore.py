"""Sender-key chains in the database: ours to send with, the others' to read with.

The chain of (conversation, epoch, author) is stored at its next unused index;
keys of messages skipped over wait in `skipped_keys` until their message
arrives. Each key is used once: a message whose key is gone is a replay.

A burst of messages (:meth:`KeyStore.batch`) reads each chain once and writes
it once. A message behind its chain that carries its chain's share derives
its key from the share; where the last such derivation got to is kept (as the
share itself is, by chat.pairwise), so a backlog arriving newest first costs a
step or two of the hash ratchet per message, not one per message before it in
its chain.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from chat.senderkey import (
    MAX_SKIP,
    Chain,
    message_key,
    new_chain_key,
    next_chain_key,
    rotation_due,
)
from mesh.errors import ChatError
from mesh.storage.store import Store

#: shares remembered with the chains derived from each, at most
MAX_CURSORS = 1024
#: every MARK_EVERY steps from a share, the chain there is kept: a message behind the
#: last one derived from that share is derived from the mark before it, not from the
#: share's start (back after days, copies parked in the mesh and the author's retries
#: come in no one order)
MARK_EVERY = 16

Where = tuple[str, int, str]
#: during a batch: (conv, epoch, peer) -> (its chain, whether it was changed)
Held = dict[Where, tuple[Chain | None, bool]]


class KeyStore:
    """Sender-key chains of every conversation, in the caller's transactions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: during a batch: (conv, epoch, peer) -> (its chain, whether it was changed)
        self._held: Held | None = None
        #: during a batch: (conv, epoch, peer) -> the indexes it has skipped keys for
        self._skipped: dict[Where, set[int]] = {}
        #: a share's chain key -> the last chain derived from it, and its marks
        self._cursors: OrderedDict[bytes, _Walk] = OrderedDict()
        #: chains read from and written to the store; chain keys derived (steps of the
        #: hash ratchet) for received messages (operation counts: what a batch and the
        #: cursors save)
        self.loads = 0
        self.saves = 0
        self.steps = 0

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Read each chain once and write it once (at the end, inside the caller's
        transaction): a burst from one sender otherwise rewrites its chain per message.
        Wrap each message in :meth:`savepoint`, so that a refused one moves no chain."""
        self._held = {}
        self._skipped = {}
        try:
            yield
            for (conv_id, epoch, peer_id), (chain, changed) in self._held.items():
                if changed and chain is not None:
                    self._write(conv_id, epoch, peer_id, chain)
        finally:
            self._held = None
            self._skipped = {}

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a batch: the chains as they were, if the block raises."""
        kept = self.mark()
        try:
            yield
        except BaseException:
            self.restore(kept)
            raise

    def mark(self) -> Held | None:
        """Inside a batch: the chains as they are now (for :meth:`restore`)."""
        return None if self._held is None else dict(self._held)

    def restore(self, kept: Held | None) -> None:
        """Inside a batch: the chains back as they were at :meth:`mark`."""
        if kept is not None:
            self._held = kept
            self._skipped = {}  # read again: a rollback may have changed them

    def chain(self, conv_id: str, epoch: int, peer_id: str) -> Chain | None:
        where = (conv_id, epoch, peer_id)
        if self._held is not None:
            held = self._held.get(where)
            if held is None:
                held = self._held[where] = (self._read(*where), False)
            return held[0]
        return self._read(*where)

    def _read(self, conv_id: str, epoch: int, peer_id: str) -> Chain | None:
        self.loads += 1
        rows = self.store.query(
            "SELECT chain_key, idx FROM chains WHERE conv_id = ? AND epoch = ? AND peer_id = ?",
            (conv_id, epoch, peer_id),
        )
        return Chain(bytes(rows[0]["chain_key"]), int(rows[0]["idx"])) if rows else None

    def save(self, conv_id: str, epoch: int, peer_id: str, chain: Chain) -> None:
        """Store a chain at its next unused index (keeping when our own was drawn)."""
        if self._held is not None:
            self._held[(conv_id, epoch, peer_id)] = (chain, True)
            return
        self._write(conv_id, epoch, peer_id, chain)

    def _write(self, conv_id: str, epoch: int, peer_id: str, chain: Chain) -> None:
        self.saves += 1
        self.store.execute(
            "INSERT INTO chains (conv_id, epoch, peer_id, chain_key, idx) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (conv_id, epoch, peer_id) DO UPDATE SET chain_key = excluded.chain_key,"
            " idx = excluded.idx",
            (conv_id, epoch, peer_id, chain.chain_key, chain.index),
        )

    def sending_chain(self, conv_id: str, epoch: int, me: str, now: float) -> tuple[Chain, bool]:
        """Our chain to send the next message with, and whether it was drawn just now.

        A fresh chain key is drawn for a new (conversation, epoch) and whenever the
        current chain is due for rotation; then no member counts as holding it yet.
        """
        rows = self.store.query(
            "SELECT chain_key, idx, since_idx, since_ts FROM chains"
            " WHERE conv_id = ? AND epoch = ? AND peer_id = ?",
            (conv_id, epoch, me),
        )
        if rows:
            row = rows[0]
            age = None if row["since_ts"] is None else now - float(row["since_ts"])
            if not rotation_due(int(row["idx"]) - int(row["since_idx"]), age):
                return Chain(bytes(row["chain_key"]), int(row["idx"])), False
        chain = Chain(new_chain_key(), int(rows[0]["idx"]) if rows else 0)
        self.save(conv_id, epoch, me, chain)
        self.store.execute(
            "UPDATE chains SET since_idx = ?, since_ts = ? WHERE conv_id = ? AND epoch = ?"
            " AND peer_id = ?",
            (chain.index, now, conv_id, epoch, me),
        )
        self.store.execute("DELETE FROM key_acks WHERE conv_id = ? AND epoch = ?", (conv_id, epoch))
        return chain, bool(rows)

    def acknowledged(
        self, conv_id: str | None, epoch: int | None, me: str, peer_id: str, *msg_ids: str
    ) -> None:
        """`peer_id` receipted our messages `msg_ids`: it holds our current chain if one of
        them was sent on it (a receipt for messages of a rotated-out chain says nothing).
        One statement, however many messages a receipt names."""
        for start in range(0, len(msg_ids), 500):
            page = msg_ids[start : start + 500]
            self.store.execute(
                "INSERT OR IGNORE INTO key_acks (conv_id, epoch, peer_id) SELECT ?, ?, ?"
                " WHERE (SELECT MAX(idx) FROM messages WHERE msg_id IN"
                f" ({','.join('?' * len(page))})) >= (SELECT since_idx FROM chains"
                " WHERE conv_id = ? AND epoch = ? AND peer_id = ?)",
                (conv_id, epoch, peer_id, *page, conv_id, epoch, me),
            )

    def message_key(
        self, conv_id: str, epoch: int, peer_id: str, index: int, shared: Chain | None
    ) -> bytes | None:
        """The key of message `index` of a peer's chain, used up; None when none is known yet.

        `shared` is the chain the message itself carried (a key share), if any.
        Raises ChatError when the key was used already (a replay) or is out of reach.
        """
        where = (conv_id, epoch, peer_id, index)
        chain = self.chain(conv_id, epoch, peer_id)
        if shared is not None and (chain is None or shared.index >= chain.index):
            # a share at or past our chain wins from its index on (the sender may have
            # rotated); what the old chain gives up to there waits for late messages
            if chain is not None:
                self._keep_skipped(conv_id, epoch, peer_id, chain.keys_until(shared.index))
            chain = shared
        if chain is None:
            return None
        if index >= chain.index:
            self.steps += index - chain.index + 1
            key, after, skipped = chain.key_for(index)
            self.save(conv_id, epoch, peer_id, after)
            self._keep_skipped(conv_id, epoch, peer_id, skipped)
            return key
        rows = []
        if self._may_have_skipped(conv_id, epoch, peer_id, index):
            rows = self.store.query(
                "SELECT message_key FROM skipped_keys WHERE conv_id = ? AND epoch = ?"
                " AND peer_id = ? AND idx = ?",
                where,
            )
        if rows:
            self._skipped.get((conv_id, epoch, peer_id), set()).discard(index)
            self.store.execute(
                "DELETE FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?"
                " AND idx = ?",
                where,
            )
        if shared is not None and shared.index <= index:
            # it arrived after a later message's chain: its own share (of its chain, from the
            # chain's first message to us: chat.pairwise) beats a skipped key, which may be
            # derived from a chain the sender has rotated away from since
            return self._from_share(shared, index)
        if rows:
            return bytes(rows[0]["message_key"])
        raise ChatError("message key already used (replayed) or too old", reason="replayed")

    def _may_have_skipped(self, conv_id: str, epoch: int, peer_id: str, index: int) -> bool:
        """Whether a skipped key of `index` may be stored: in a batch, each chain's
        indexes are read once, so that a backlog behind its chain (whose skipped keys
        are few or none) does not look each message up."""
        if self._held is None:
            return True
        chain = (conv_id, epoch, peer_id)
        indexes = self._skipped.get(chain)
        if indexes is None:
            rows = self.store.query(
                "SELECT idx FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?",
                chain,
            )
            indexes = self._skipped[chain] = {int(r["idx"]) for r in rows}
        return index in indexes

    def _from_share(self, shared: Chain, index: int) -> bytes:
        """The key of message `index` (>= shared.index) derived from a share: from the
        nearest chain derived from that share before, not past `index`: the last one, or
        the mark (one every MARK_EVERY steps) before `index`."""
        if not shared.reaches(index):
            raise ChatError(f"message index {index} is too far ahead of the chain", reason="other")
        walk = self._cursors.get(shared.chain_key)
        if walk is None:
            walk = _Walk(shared, {0: shared})
        mark = (index - shared.index) // MARK_EVERY
        while mark not in walk.marks:
            mark -= 1  # mark 0 is the share itself
        start = walk.marks[mark]
        if start.index < walk.last.index <= index:
            start = walk.last  # nearer
        self.steps += index - start.index
        chain_key = start.chain_key
        for at in range(start.index + 1, index + 1):
            chain_key = next_chain_key(chain_key)
            if (at - shared.index) % MARK_EVERY == 0:
                walk.marks[(at - shared.index) // MARK_EVERY] = Chain(chain_key, at)
        walk.last = Chain(chain_key, index)
        self._cursors[shared.chain_key] = walk
        self._cursors.move_to_end(shared.chain_key)
        if len(self._cursors) > MAX_CURSORS:
            self._cursors.popitem(last=False)
        return message_key(chain_key)

    def _keep_skipped(self, conv_id: str, epoch: int, peer_id: str, keys: dict[int, bytes]) -> None:
        """Keep keys of messages not yet arrived; a chain keeps MAX_SKIP of them at most."""
        if not keys:
            return
        self._skipped.pop((conv_id, epoch, peer_id), None)  # read again when next needed
        for i, k in keys.items():
            self.store.execute(
                "INSERT OR IGNORE INTO skipped_keys (conv_id, epoch, peer_id, idx, message_key)"
                " VALUES (?, ?, ?, ?, ?)",
                (conv_id, epoch, peer_id, i, k),
            )
        self.store.execute(
            "DELETE FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?"
            " AND idx < (SELECT idx FROM skipped_keys WHERE conv_id = ? AND epoch = ?"
            " AND peer_id = ? ORDER BY idx DESC LIMIT 1 OFFSET ?)",
            (conv_id, epoch, peer_id, conv_id, epoch, peer_id, MAX_SKIP - 1),
        )


@dataclass
class _Walk:
    """The chains derived from one share: the last one, and one every MARK_EVERY steps
    (by how many MARK_EVERY steps they are from the share)."""

    last: Chain
    marks: dict[int, Chain]
