"""A conversation as stored: its messages, and the edits, deletes and reactions applied to them.

Every opened content is one row of ``messages`` (:mod:`chat.tables`), whatever
its kind. A change (edit, delete, react) applies to its target when both are
here, in whichever order they came: one that arrives first waits (``held``)
and applies when the target is stored. The rules, checked where a change applies:

- an edit or delete counts only if its author wrote the target, in the same
  conversation; anything else is refused (``refused`` names the reason, the
  chat counts it) and forgotten;
- a delete is final: the target's text, its edits' and its reactions are
  wiped, and the full-text index is rewritten so the old words leave it too
  (``purge``: the caller then checkpoints the WAL, after the commit);
- of several edits, the latest by (timestamp, sequence) wins, in any order;
- reactions: anyone in the conversation may react; the latest (timestamp,
  sequence) of each (author, emoji) says whether it is on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chat import unread
from chat.content import Content
from chat.tables import SHOWN_KINDS
from mesh.errors import StorageError
from mesh.storage.store import Store

#: rows one duplicate check names at most (SQLite's limit on parameters is 32,766)
PAGE = 500
#: the columns a content's row is inserted with, in order
COLUMNS = (
    *("msg_id", "conv_id", "author", "text", "ts", "seq", "status", "stored_at", "epoch"),
    *("idx", "kind", "ref", "held", "mention", "active"),
)
INSERT = (
    f"INSERT OR IGNORE INTO messages ({', '.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
)
#: the other columns a view reads, as a new row has them
UNCHANGED = {"edited": 0, "deleted": 0}


@dataclass
class Stored:
    """What storing one content did."""

    added: bool = False
    #: the shown messages that changed (their views are sent to listeners again)
    changed: list[str] = field(default_factory=list)
    #: one reason per change refused ("not_author", "wrong_conversation")
    refused: list[str] = field(default_factory=list)
    #: a delete applied: the caller checkpoints the WAL after the commit
    purge: bool = False
    #: the row as stored (the columns a view reads), when it was staged: a new message
    #: or reply that nothing changed in the burst
    row: dict[str, Any] | None = None


class Timeline:
    """Stores contents and applies changes, inside the caller's transaction."""

    def __init__(self, store: Store, me: str, mentions: Callable[[str], bool]) -> None:
        self.store = store
        self.me = me
        #: whether a text mentions this peer
        self.mentions = mentions
        #: during a batch: conversation -> [unread, mentions] not counted in the store yet
        self._unread: dict[str, list[int]] | None = None
        #: during a batch: the text index is filled at its end (or before a text changes)
        self._deferred = False
        #: whether a change may wait for its target (in a batch: asked once, then kept)
        self._held = True
        #: during a batch: rows of new messages to insert together (:meth:`stage`)
        self._staged: list[tuple[Any, ...]] = []
        #: statements that inserted staged rows (one per page; an operation count)
        self.staged_inserts = 0

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Count the unread messages a burst adds with one statement per conversation,
        and index their text with one statement (both at the end, inside the caller's
        transaction), not one each per message (chat.tables, FTS_DEFERRED)."""
        self._unread = {}
        self._defer_index()
        self._deferred = True
        self._held = bool(self.store.query("SELECT 1 FROM messages WHERE held = 1 LIMIT 1"))
        try:
            yield
            self._count_unread()
            self._index_deferred()
            self.store.execute("DELETE FROM messages_fts_deferred")
        finally:
            self._unread = None
            self._deferred = False
            self._held = True
            self._staged = []

    def _defer_index(self) -> None:
        """Index none of the rows inserted from now on (until :meth:`_index_deferred`)."""
        self.store.execute(
            "INSERT INTO messages_fts_deferred (since) SELECT COALESCE(MAX(rowid), 0) FROM messages"
        )

    def _index_deferred(self) -> None:
        """Index the shown rows inserted since the index was deferred: before any text of
        them changes (the update trigger takes the old text out of the index) and at the
        end of the burst. Rows are numbered upwards, so those are the rows past `since`;
        a row a savepoint undid is gone from both."""
        self.store.execute(
            "INSERT INTO messages_fts (rowid, text) SELECT rowid, text FROM messages"
            " WHERE rowid > (SELECT since FROM messages_fts_deferred)"
            " AND kind IN ('msg', 'reply')"
        )
        self.store.execute(
            "UPDATE messages_fts_deferred"
            " SET since = (SELECT COALESCE(MAX(rowid), 0) FROM messages)"
        )

    def _count_unread(self) -> None:
        if self._unread:
            for conv_id, (n, mentions) in self._unread.items():
                unread.count(self.store, conv_id, mentions, n)
            self._unread.clear()

    def next_index(self, conv_id: str, author: str, epoch: int) -> int:
        """The index an author's next content in a conversation takes (one past its last)."""
        rows = self.store.query(
            "SELECT MAX(idx) AS i FROM messages WHERE conv_id = ? AND author = ? AND epoch = ?",
            (conv_id, author, epoch),
        )
        last = rows[0]["i"] if rows else None
        return 0 if last is None else int(last) + 1

    def add(
        self,
        conv_id: str,
        author: str,
        content: Content,
        status: str,
        now: float,
        epoch: int,
        index: int,
    ) -> Stored:
        """Store one content (once: a second copy adds nothing) and apply what it changes."""
        shown = content.kind in SHOWN_KINDS
        row = self._row(conv_id, author, content, status, now, epoch, index)
        # what was staged is stored first (it may be this change's target)
        assert not self._staged, "store_staged() before add()"
        added = self.store.execute(INSERT, row)
        result = Stored(added=bool(added))
        if not added:
            return result
        if shown:
            self._count(row)
            if self._held:
                for change in self._rows("ref = ? AND held = 1 ORDER BY ts, seq", content.msg_id):
                    self._apply(change, result)
        else:
            self._held = True  # it may wait for its target
            self._apply(self._rows("msg_id = ?", content.msg_id)[0], result)
        return result

    def _row(
        self,
        conv_id: str,
        author: str,
        content: Content,
        status: str,
        now: float,
        epoch: int,
        index: int,
    ) -> tuple[Any, ...]:
        """A content's row of ``messages``, in INSERT's order."""
        shown = content.kind in SHOWN_KINDS
        mention = shown and author != self.me and self.mentions(content.text)
        return (
            content.msg_id,
            conv_id,
            author,
            content.text,
            content.ts,
            content.seq,
            status,
            now,
            epoch,
            index,
            content.kind,
            content.ref,
            int(not shown),
            int(mention),
            int(content.on),
        )

    def _count(self, row: tuple[Any, ...]) -> None:
        """A shown row was added: one more unread (and mention) if someone else wrote it."""
        conv_id, author, mention = row[1], row[2], row[13]
        if author == self.me:
            return
        if self._unread is not None:
            counts = self._unread.setdefault(conv_id, [0, 0])
            counts[0] += 1
            counts[1] += mention
        else:
            unread.count(self.store, conv_id, mention)

    def can_stage(self, content: Content) -> bool:
        """Whether :meth:`stage` may take `content`: inside a batch, a message or a reply
        while no change waits for its target (nothing then applies when it is stored)."""
        return self._unread is not None and content.kind in SHOWN_KINDS and not self._held

    def stage(
        self,
        conv_id: str,
        author: str,
        content: Content,
        status: str,
        now: float,
        epoch: int,
        index: int,
    ) -> None:
        """Keep a content (:meth:`can_stage`) to be inserted with the others staged, by
        :meth:`store_staged` (which answers for each in the order staged): one statement
        for many rows, where :meth:`add` costs one each. The caller knows its
        (conversation, author, epoch, index) is not stored yet."""
        self._staged.append(self._row(conv_id, author, content, status, now, epoch, index))

    def store_staged(self) -> list[Stored]:
        """Insert the staged rows (a content whose id is stored already adds nothing, as
        in :meth:`add`); return what storing each did, in the order staged."""
        staged, self._staged = self._staged, []
        if not staged:
            return []
        known: set[str] = set()
        ids = [row[0] for row in staged]
        for start in range(0, len(ids), PAGE):
            page = ids[start : start + PAGE]
            rows = self.store.query(
                f"SELECT msg_id FROM messages WHERE msg_id IN ({','.join('?' * len(page))})",
                tuple(page),
            )
            known.update(row["msg_id"] for row in rows)
        results: list[Stored] = []
        fresh: list[tuple[Any, ...]] = []
        for row in staged:
            if row[0] in known:
                results.append(Stored())
                continue
            known.add(row[0])
            fresh.append(row)
            results.append(
                Stored(added=True, row={**dict(zip(COLUMNS, row, strict=True)), **UNCHANGED})
            )
        self.staged_inserts += 1
        if self.store.executemany(INSERT, fresh) != len(fresh):
            # a row the caller said was new was not (its place in its conversation is
            # taken; the caller checks that): the burst fails whole, nothing receipted
            raise StorageError("a staged message's place was taken already")
        for row in fresh:
            self._count(row)
        return results

    def _rows(self, where: str, *params: Any) -> list[dict[str, Any]]:
        return self.store.query(f"SELECT * FROM messages WHERE {where}", params)

    def _apply(self, change: dict[str, Any], result: Stored) -> None:
        """Apply a change to its target if the target is here; else it stays held."""
        targets = self._rows("msg_id = ? AND kind IN ('msg', 'reply')", change["ref"])
        if not targets:
            return  # held until the target comes
        target = targets[0]
        reason = None
        if target["conv_id"] != change["conv_id"]:
            reason = "wrong_conversation"
        elif change["kind"] != "react" and target["author"] != change["author"]:
            reason = "not_author"
        if reason is not None:
            result.refused.append(reason)
        elif not target["deleted"]:
            {"edit": self._edit, "delete": self._delete, "react": self._react}[change["kind"]](
                change, target, result
            )
        # applied, refused, or too late (the target is deleted): nothing of it is kept
        self.store.execute(
            "UPDATE messages SET held = 0, text = '' WHERE msg_id = ?", (change["msg_id"],)
        )

    def _edit(self, change: dict[str, Any], target: dict[str, Any], result: Stored) -> None:
        # only the target's author's own edits in its conversation count: a refused one
        # (kept, wiped) must not hold back the author's later edits
        newer = self.store.query(
            "SELECT 1 FROM messages WHERE ref = ? AND kind = 'edit' AND held = 0"
            " AND author = ? AND conv_id = ? AND (ts > ? OR (ts = ? AND seq > ?))",
            (
                target["msg_id"],
                target["author"],
                target["conv_id"],
                change["ts"],
                change["ts"],
                change["seq"],
            ),
        )
        if newer:
            return  # a later edit already applied
        mention = target["author"] != self.me and self.mentions(change["text"])
        if self._deferred:
            self._index_deferred()  # the target may be new: in the index before it changes
        self.store.execute(
            "UPDATE messages SET text = ?, edited = 1, mention = ? WHERE msg_id = ?",
            (change["text"], int(mention), target["msg_id"]),
        )
        result.changed.append(target["msg_id"])

    def _delete(self, change: dict[str, Any], target: dict[str, Any], result: Stored) -> None:
        if target["author"] != self.me:
            self._count_unread()  # what the batch counted so far first
            unread.uncount(self.store, target)
        if self._deferred:
            self._index_deferred()  # the target may be new: in the index before it changes
        self.store.execute(
            "UPDATE messages SET text = '', deleted = 1, edited = 0, mention = 0 WHERE msg_id = ?",
            (target["msg_id"],),
        )
        self.store.execute(
            "UPDATE messages SET text = '' WHERE ref = ? AND kind IN ('edit', 'react')",
            (target["msg_id"],),
        )
        self.store.execute("DELETE FROM reactions WHERE msg_id = ?", (target["msg_id"],))
        # FTS5 keeps a deleted row's terms in older segments until they merge: merge them all
        self.store.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        result.changed.append(target["msg_id"])
        result.purge = True

    def _react(self, change: dict[str, Any], target: dict[str, Any], result: Stored) -> None:
        changed = self.store.execute(
            "INSERT INTO reactions (msg_id, author, emoji, active, ts, seq) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT(msg_id, author, emoji) DO UPDATE SET active = excluded.active,"
            " ts = excluded.ts, seq = excluded.seq WHERE excluded.ts > reactions.ts"
            " OR (excluded.ts = reactions.ts AND excluded.seq > reactions.seq)",
            (
                target["msg_id"],
                change["author"],
                change["text"],
                change["active"],
                change["ts"],
                change["seq"],
            ),
        )
        if changed:
            result.changed.append(target["msg_id"])
