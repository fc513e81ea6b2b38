"""What the front ends read of the chat: conversations and messages, as plain dicts.

Read-only views of the chat tables (:mod:`chat.messages` and
:mod:`chat.timeline` write them); the dicts are what ``history --json``, the
UI's listeners and the screens get. A message's view:

    {"id", "conv_id", "author", "text", "ts", "status",
     "edited", "deleted", "mention", "reply_to", "quote", "reactions"}

``text`` is "" once deleted; ``quote`` is the answered message's
{"id", "author", "text", "deleted"} (None if it is not here); ``reactions``
maps each emoji to how many reacted with it, and ``mine`` lists this peer's.
"""

from __future__ import annotations

from typing import Any

from mesh.errors import UsageError
from mesh.storage.store import Store

SHOWN = "kind IN ('msg', 'reply')"


def conversations(store: Store) -> list[dict[str, Any]]:
    """Every conversation (rooms and direct ones), rooms first, then by name."""
    rows = store.query("SELECT * FROM conversations ORDER BY kind, name, conv_id")
    return [_conversation_view(r) for r in rows]


def conversation(store: Store, conv_id: str) -> dict[str, Any] | None:
    """One conversation by its exact id, or None when there is none."""
    rows = store.query("SELECT * FROM conversations WHERE conv_id = ?", (conv_id,))
    return _conversation_view(rows[0]) if rows else None


def room_id(store: Store, name: str) -> str:
    """A room's id by its id, an unambiguous id prefix, or its name; else UsageError."""
    name = name.strip()
    rows = store.query(
        "SELECT conv_id FROM conversations WHERE kind = 'room' AND (conv_id = ? OR name = ?)",
        (name.lower(), name),
    )
    if len(rows) == 1:
        return str(rows[0]["conv_id"])
    if len(rows) > 1:
        raise UsageError(f"{len(rows)} rooms are called {name!r}; use the room id")
    rows = store.query(
        "SELECT conv_id FROM conversations WHERE kind = 'room' AND conv_id LIKE ?",
        (name.lower() + "%",),
    )
    if len(rows) == 1 and name:
        return str(rows[0]["conv_id"])
    if rows and name:
        raise UsageError(f"{name!r} matches {len(rows)} rooms; give more of the id")
    raise UsageError(f"no room matches {name!r}")


def last_messages(store: Store, conv_id: str, limit: int, me: str = "") -> list[dict[str, Any]]:
    """The last `limit` messages of a conversation, oldest first."""
    rows = store.query(
        f"SELECT * FROM (SELECT * FROM messages WHERE conv_id = ? AND {SHOWN}"
        " ORDER BY ts DESC, author DESC, seq DESC LIMIT ?) ORDER BY ts, author, seq",
        (conv_id, limit),
    )
    return views(store, rows, me)


def messages_around(
    store: Store, conv_id: str, msg_id: str, limit: int, me: str = ""
) -> list[dict[str, Any]]:
    """Up to `limit` messages of a conversation with `msg_id` among them (about half before
    it), oldest first; the last messages when it is not there."""
    at = _position(store, conv_id, msg_id)
    if at is None:
        return last_messages(store, conv_id, limit, me)
    before = _before(store, conv_id, at, limit // 2)
    after = store.query(
        f"SELECT * FROM messages WHERE conv_id = ? AND {SHOWN} AND (ts, author, seq) >= (?, ?, ?)"
        " ORDER BY ts, author, seq LIMIT ?",
        (conv_id, *_key(at), limit - len(before)),
    )
    return views(store, [*before, *after], me)


def messages_before(
    store: Store, conv_id: str, msg_id: str, limit: int, me: str = ""
) -> list[dict[str, Any]]:
    """The `limit` messages of a conversation just before `msg_id`, oldest first (a page of
    scroll-back: keyset, so as fast deep in a long history as near its end); none when
    `msg_id` is not there."""
    at = _position(store, conv_id, msg_id)
    return [] if at is None else views(store, _before(store, conv_id, at, limit), me)


def _position(store: Store, conv_id: str, msg_id: str) -> dict[str, Any] | None:
    """The ordering key (ts, author, seq) of a shown message of the conversation."""
    found = store.query(
        f"SELECT ts, author, seq FROM messages WHERE msg_id = ? AND conv_id = ? AND {SHOWN}",
        (msg_id, conv_id),
    )
    return found[0] if found else None


def _key(at: dict[str, Any]) -> tuple[Any, ...]:
    return (at["ts"], at["author"], at["seq"])


def _before(store: Store, conv_id: str, at: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """The rows of the `limit` messages just before position `at`, oldest first (a row-value
    comparison, which SQLite answers with a range of the messages_order index)."""
    rows = store.query(
        f"SELECT * FROM messages WHERE conv_id = ? AND {SHOWN} AND (ts, author, seq) < (?, ?, ?)"
        " ORDER BY ts DESC, author DESC, seq DESC LIMIT ?",
        (conv_id, *_key(at), limit),
    )
    return rows[::-1]


def message(store: Store, msg_id: str, me: str = "") -> dict[str, Any]:
    """One stored message (it must exist)."""
    return views(store, store.query("SELECT * FROM messages WHERE msg_id = ?", (msg_id,)), me)[0]


def messages(
    store: Store, msg_ids: list[str], me: str = "", rows: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The stored messages of `msg_ids` (those that are stored), in that order: a few
    queries per page of 500, however many. `rows`: rows of some of them the caller has
    (as just written: chat.timeline), not read again."""
    out: list[dict[str, Any]] = []
    known = rows or {}
    for start in range(0, len(msg_ids), 500):
        page = msg_ids[start : start + 500]
        wanted = tuple(msg_id for msg_id in page if msg_id not in known)
        by_id = {msg_id: known[msg_id] for msg_id in page if msg_id in known}
        if wanted:
            found = store.query(
                f"SELECT * FROM messages WHERE msg_id IN ({','.join('?' * len(wanted))})", wanted
            )
            by_id.update((row["msg_id"], row) for row in found)
        out.extend(views(store, [by_id[msg_id] for msg_id in page if msg_id in by_id], me))
    return out


def views(store: Store, rows: list[dict[str, Any]], me: str = "") -> list[dict[str, Any]]:
    """The views of stored message rows, with their quotes and reactions (two queries)."""
    out = [_message_view(row) for row in rows]
    ids = [m["id"] for m in out]
    if not ids:
        return out
    marks = ",".join("?" * len(ids))
    for m in out:
        m["reactions"], m["mine"] = {}, []
    by_id = {m["id"]: m for m in out}
    for r in store.query(
        f"SELECT msg_id, emoji, author FROM reactions WHERE active = 1 AND msg_id IN ({marks})"
        " ORDER BY emoji",
        tuple(ids),
    ):
        m = by_id[r["msg_id"]]
        m["reactions"][r["emoji"]] = m["reactions"].get(r["emoji"], 0) + 1
        if r["author"] == me:
            m["mine"].append(r["emoji"])
    answered = [m["reply_to"] for m in out if m["reply_to"]]
    quotes: dict[str, dict[str, Any]] = {}
    if answered:
        for q in store.query(
            f"SELECT msg_id, conv_id, author, text, deleted FROM messages WHERE {SHOWN}"
            f" AND msg_id IN ({','.join('?' * len(answered))})",
            tuple(answered),
        ):
            quotes[q["msg_id"]] = q
    for m in out:
        found = quotes.get(m["reply_to"] or "")
        m["quote"] = (
            {
                "id": found["msg_id"],
                "author": found["author"],
                "text": found["text"],
                "deleted": bool(found["deleted"]),
            }
            if found is not None and found["conv_id"] == m["conv_id"]
            else None
        )
    return out


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
        "kind": row["kind"],
        "edited": bool(row["edited"]),
        "deleted": bool(row["deleted"]),
        "mention": bool(row["mention"]),
        "reply_to": row["ref"] if row["kind"] == "reply" else None,
    }
