"""Sender-key chains in the database: ours to send with, the others' to read with.

The chain of (conversation, epoch, author) is stored at its next unused index;
keys of messages skipped over wait in `skipped_keys` until their message
arrives. Each key is used once: a message whose key is gone is a replay.
"""

from __future__ import annotations

from chat.senderkey import MAX_SKIP, Chain, message_key
from mesh.errors import ChatError
from mesh.storage.store import Store


class KeyStore:
    """Sender-key chains of every conversation, in the caller's transactions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def chain(self, conv_id: str, epoch: int, peer_id: str) -> Chain | None:
        rows = self.store.query(
            "SELECT chain_key, idx FROM chains WHERE conv_id = ? AND epoch = ? AND peer_id = ?",
            (conv_id, epoch, peer_id),
        )
        return Chain(bytes(rows[0]["chain_key"]), int(rows[0]["idx"])) if rows else None

    def save(self, conv_id: str, epoch: int, peer_id: str, chain: Chain) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO chains (conv_id, epoch, peer_id, chain_key, idx)"
            " VALUES (?, ?, ?, ?, ?)",
            (conv_id, epoch, peer_id, chain.chain_key, chain.index),
        )

    def message_key(
        self, conv_id: str, epoch: int, peer_id: str, index: int, shared: Chain | None
    ) -> bytes | None:
        """The key of message `index` of a peer's chain, used up; None when none is known yet.

        `shared` is the chain the message itself carried (a key share), if any.
        Raises ChatError when the key was used already (a replay) or is out of reach.
        """
        where = (conv_id, epoch, peer_id, index)
        chain = self.chain(conv_id, epoch, peer_id) or shared
        if chain is None:
            return None
        if index >= chain.index:
            key, after, skipped = chain.key_for(index)
            self.save(conv_id, epoch, peer_id, after)
            for i, k in skipped.items():
                self.store.execute(
                    "INSERT OR IGNORE INTO skipped_keys (conv_id, epoch, peer_id, idx, message_key)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (conv_id, epoch, peer_id, i, k),
                )
            if skipped:
                # a chain keeps MAX_SKIP waiting keys at most: the oldest give way
                self.store.execute(
                    "DELETE FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?"
                    " AND idx < (SELECT idx FROM skipped_keys WHERE conv_id = ? AND epoch = ?"
                    " AND peer_id = ? ORDER BY idx DESC LIMIT 1 OFFSET ?)",
                    (conv_id, epoch, peer_id, conv_id, epoch, peer_id, MAX_SKIP - 1),
                )
            return key
        rows = self.store.query(
            "SELECT message_key FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?"
            " AND idx = ?",
            where,
        )
        if rows:
            self.store.execute(
                "DELETE FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?"
                " AND idx = ?",
                where,
            )
            return bytes(rows[0]["message_key"])
        if shared is not None and shared.index == index:
            # it arrived after a later message whose share started the chain
            return message_key(shared.chain_key)
        raise ChatError("message key already used (replayed) or too old", reason="replayed")
