"""The rooms' document keys: one random key per room and epoch, made by the admin and boxed
for each member (pairwise control messages, `dockeys`), so that notes sealed under it are
readable to the members of that epoch (docs/chat.md, *Document keys*)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from chat.room import RoomState
from chat.senderkey import new_chain_key
from mesh.errors import ChatError
from mesh.storage.store import Store
from mesh.wire.identity import Identity, decode_peer_id


class DocumentKeys(ABC):
    """The document-key half of :class:`chat.rooms.Rooms`."""

    store: Store
    identity: Identity
    send_control: Callable[[bytes, dict[str, Any], float], None]
    emit: Callable[[str, dict[str, Any]], None]
    _key_hooks: list[Callable[[str, list[int]], None]]

    @abstractmethod
    def state(self, conv_id: str) -> RoomState:
        """Who is in the room now."""

    @abstractmethod
    def _notify(self, hooks: list[Callable[..., None]], *args: object) -> None:
        """Call each hook, a failing one logged."""

    def on_document_keys(self, hook: Callable[[str, list[int]], None]) -> None:
        """Call `hook(room id, epochs)` whenever document keys of a room arrive from its admin."""
        self._key_hooks.append(hook)

    def document_key(self, conv_id: str, epoch: int) -> bytes | None:
        """The room's document key of `epoch` (for notes), if this peer holds it."""
        rows = self.store.query(
            "SELECT key FROM doc_keys WHERE conv_id = ? AND epoch = ?", (conv_id, epoch)
        )
        return bytes(rows[0]["key"]) if rows else None

    def _new_document_key(self, conv_id: str, epoch: int, members: set[bytes], now: float) -> None:
        """The admin starts an epoch's document key and gives it to the members."""
        self.store.execute(
            "INSERT OR IGNORE INTO doc_keys (conv_id, epoch, key) VALUES (?, ?, ?)",
            (conv_id, epoch, new_chain_key()),
        )
        for member in members - {self.identity.public_key}:
            self._send_document_keys(conv_id, member, now, only_epoch=epoch)

    def _send_document_keys(
        self, conv_id: str, peer: bytes, now: float, only_epoch: int | None = None
    ) -> None:
        """Box the room's document keys (all epochs: history stays readable) for a member."""
        rows = self.store.query("SELECT epoch, key FROM doc_keys WHERE conv_id = ?", (conv_id,))
        keys = [
            [r["epoch"], bytes(r["key"])]
            for r in rows
            if only_epoch is None or r["epoch"] == only_epoch
        ]
        if keys:
            room_id = decode_peer_id(conv_id)
            self.send_control(peer, {"k": "dockeys", "room": room_id, "keys": keys}, now)

    def _receive_document_keys(self, sender: bytes, conv_id: str, keys: object) -> str:
        state = self.state(conv_id)
        if state.admin != sender or self.identity.public_key not in state.members:
            raise ChatError(
                "document keys not from the admin, or not for a member", reason="not_admin"
            )
        valid = isinstance(keys, list) and all(
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], int)
            and 0 <= pair[0] < 2**32
            and isinstance(pair[1], bytes)
            and len(pair[1]) == 32
            for pair in keys
        )
        if not valid or not isinstance(keys, list):
            raise ChatError("malformed document keys", reason="malformed")
        with self.store.atomic():
            for epoch, key in keys:
                self.store.execute(
                    "INSERT OR IGNORE INTO doc_keys (conv_id, epoch, key) VALUES (?, ?, ?)",
                    (conv_id, epoch, key),
                )
        epochs = sorted(e for e, _ in keys)
        self.emit("dockeys", {"room_id": conv_id, "epochs": epochs})
        self._notify(self._key_hooks, conv_id, epochs)
        return conv_id
