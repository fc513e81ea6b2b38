"""What the front ends read of the chat: conversations and messages, as plain dicts.

Read-only views of the chat tables (:mod:`chat.messages` writes them); the
dicts are what ``history --json``, the UI's listeners and the screens get.
"""

from __future__ import annotations

from typing import Any

from mesh.storage.store import Store


def conversations(store: Store) -> list[dict[str, Any]]:
    """Every conversation (rooms and direct ones), rooms first, then by name."""
    rows = store.query("SELECT * FROM conversations ORDER BY kind, name, conv_id")
    return [_conversation_view(r) for r in rows]


def conversation(store: Store, conv_id: str) -> dict[str, Any] | None:
    """One conversation by its exact id, or None when there is none."""
    rows = store.query("SELECT * FROM conversations WHERE conv_id = ?", (conv_id,))
    return _conversation_view(rows[0]) if rows else None


def last_messages(store: Store, conv_id: str, limit: int) -> list[dict[str, Any]]:
    """The last `limit` messages of a conversation, oldest first."""
    rows = store.query(
        "SELECT * FROM (SELECT * FROM messages WHERE conv_id = ?"
        " ORDER BY ts DESC, author DESC, seq DESC LIMIT ?) ORDER BY ts, author, seq",
        (conv_id, limit),
    )
    return [_message_view(row) for row in rows]


def message(store: Store, msg_id: str) -> dict[str, Any]:
    """One stored message (it must exist)."""
    return _message_view(store.query("SELECT * FROM messages WHERE msg_id = ?", (msg_id,))[0])


def _conversation_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "conv_id": row["conv_id"],
        "kind": row["kind"],
        "name": row["name"],
        "peer_id": row["peer_id"],
        "state": row["state"],
    }


def _message_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["msg_id"],
        "conv_id": row["conv_id"],
        "author": row["author"],
        "text": row["text"],
        "ts": row["ts"],
        "status": row["status"],
    }
