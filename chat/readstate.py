"""Read state: who has read a conversation up to where, told as ephemeral signals.

When this peer reads a conversation (:meth:`chat.messages.Chat.mark_read`, as the
UI does when it shows one), its members hear a ``read`` signal (chat/signals.py:
sealed, never stored by relays) naming the last message read; each peer keeps
the latest it heard from each member in ``read_state``. A member offline then
learns it at the next read. The setting ``read_state = false`` (meshnotes.toml)
sends none; others' are still shown. Listeners hear ``("read_by", {"conv_id",
"peer_id", "upto"})``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chat.signals import Signals
from mesh.storage.store import Store, run_script
from mesh.wire.identity import decode_peer_id, encode_peer_id

if TYPE_CHECKING:
    import sqlite_utils

#: the read-state layer's tables (Store.migrate_component "read_state")
READ_STATE_V1 = """
CREATE TABLE read_state (
    conv_id TEXT NOT NULL, peer_id TEXT NOT NULL, upto TEXT NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (conv_id, peer_id)
);
"""
MIGRATIONS: list[Callable[[sqlite_utils.Database], object]] = [
    lambda db: run_script(db, READ_STATE_V1),
]
#: the longest message id a read signal may name (ids are 26 to 52 characters)
MAX_ID = 64


class ReadState:
    """Sends this peer's read marks and keeps the members'."""

    def __init__(self, signals: Signals, enabled: bool = True) -> None:
        self.signals = signals
        self.chat = signals.chat
        self.store = self.chat.store
        self.enabled = enabled
        self._sent: dict[str, str] = {}  # conv -> the last message id told
        self.store.migrate_component("read_state", MIGRATIONS)
        signals.handlers["read"] = self._heard
        self.chat.listeners.append(self._read)

    def _read(self, kind: str, data: dict[str, Any]) -> None:
        """The chat's listener: this peer read a conversation; tell its members how far."""
        if kind != "read" or not self.enabled:
            return
        conv_id = data["conv_id"]
        last = self.chat.history(conv_id, 1)
        if not last or self._sent.get(conv_id) == last[-1]["id"]:
            return
        upto = str(last[-1]["id"])
        conv = self.chat.conversation(conv_id)
        if conv is None:
            return
        if conv["kind"] == "dm":
            sent = self.signals.to_peer(decode_peer_id(conv["peer_id"]), "read", {"upto": upto})
        else:
            sent = self.signals.to_room(conv_id, "read", {"upto": upto})
        if sent:
            self._sent[conv_id] = upto

    def _heard(self, conv_id: str, author: bytes, body: dict[str, Any]) -> None:
        upto = body.get("upto")
        if not isinstance(upto, str) or not 0 < len(upto) <= MAX_ID:
            self.signals._count("signals_dropped_malformed")
            return
        peer_id = encode_peer_id(author)
        self.store.execute(
            "INSERT INTO read_state (conv_id, peer_id, upto, ts) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(conv_id, peer_id) DO UPDATE SET upto = excluded.upto, ts = excluded.ts",
            (conv_id, peer_id, upto, self.signals.node.clock()),
        )
        self.chat.listeners.emit("read_by", {"conv_id": conv_id, "peer_id": peer_id, "upto": upto})


def read_by(store: Store, conv_id: str) -> dict[str, str]:
    """Who read a conversation up to which message, as this peer heard: {peer_id: msg_id}."""
    if not store.has_table("read_state"):  # a reader's, from before read state was kept
        return {}
    rows = store.query("SELECT peer_id, upto FROM read_state WHERE conv_id = ?", (conv_id,))
    return {row["peer_id"]: row["upto"] for row in rows}
