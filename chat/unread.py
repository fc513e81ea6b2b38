"""Unread and mention counts per conversation, kept in the database (table ``conv_reads``).

A message from someone else that is shown (a message or a reply) counts as
unread until the conversation is marked read; one that mentions this peer
(``@name``) counts as a mention too. A message deleted before it was read no
longer counts. Reading them is one row per conversation, whatever the history's size.
"""

from __future__ import annotations

import re
from typing import Any

from mesh.storage.store import Store

#: a mention: @ then a name (letters, digits, _ . -), not inside a word or an e-mail address
MENTION = re.compile(r"(?<![\w@])@([\w][\w.\-]*)")


def mentioned(text: str, names: list[str]) -> bool:
    """Whether `text` mentions any of `names` (case does not matter)."""
    if "@" not in text:  # most texts: no pattern to run
        return False
    wanted = {n.casefold() for n in names if n}
    return any(m.group(1).rstrip(".-").casefold() in wanted for m in MENTION.finditer(text))


def count(store: Store, conv_id: str, mentions: int, n: int = 1) -> None:
    """`n` more unread messages in a conversation, `mentions` of them mentioning this peer
    (inside the caller's transaction)."""
    store.execute(
        "INSERT INTO conv_reads (conv_id, unread, mentions) VALUES (?, ?, ?)"
        " ON CONFLICT(conv_id) DO UPDATE SET unread = unread + excluded.unread,"
        " mentions = mentions + excluded.mentions",
        (conv_id, n, mentions),
    )


def uncount(store: Store, row: dict[str, Any]) -> None:
    """A message is gone (deleted): it no longer counts if it was not read yet."""
    store.execute(
        "UPDATE conv_reads SET unread = max(unread - 1, 0),"
        " mentions = max(mentions - ?, 0) WHERE conv_id = ? AND read_at < ?",
        (int(bool(row["mention"])), row["conv_id"], row["stored_at"]),
    )


def mark_read(store: Store, conv_id: str, now: float) -> None:
    store.execute(
        "INSERT INTO conv_reads (conv_id, unread, mentions, read_at) VALUES (?, 0, 0, ?)"
        " ON CONFLICT(conv_id) DO UPDATE SET unread = 0, mentions = 0, read_at = excluded.read_at",
        (conv_id, now),
    )


def counts(store: Store) -> dict[str, dict[str, int]]:
    """{conv_id: {"unread", "mentions"}} for every conversation with something unread."""
    rows = store.query("SELECT conv_id, unread, mentions FROM conv_reads WHERE unread > 0")
    return {r["conv_id"]: {"unread": r["unread"], "mentions": r["mentions"]} for r in rows}
