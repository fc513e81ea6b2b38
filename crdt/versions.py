"""A note's history: its text as it stood when each burst of someone's edits ended.

A *burst* is a run of edits by one author (this peer's own, or one member's
arriving over the mesh) with no pause of `QUIET` seconds. When a burst ends —
`QUIET` seconds pass without another edit of that author, or someone else's
edit comes — the note's text and title are kept as a version: ``(number,
author, ts, title, text)``, the text zlib-compressed. Versions are per peer
(each peer records what it saw: the same bursts, give or take the timing of
their arrival) and live only in the local database; nothing more is sent.

Storage: at most `MAX_VERSIONS` per note, the oldest dropped first; each costs
about the note's compressed text (Markdown compresses to roughly a third), so a
10 KB note's history costs at most about 330 KB.

Restoring a version replaces the note's text with the version's, as one new
edit, which reaches every member as any edit does (the history is kept).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crdt.errors import NoteUsageError
from crdt.note import Note
from mesh.storage.store import Store, run_script

if TYPE_CHECKING:
    import sqlite_utils

#: the versions layer's tables (Store.migrate_component "note_versions")
VERSIONS_V1 = """
CREATE TABLE note_versions (
    note_id TEXT NOT NULL, number INTEGER NOT NULL, author TEXT NOT NULL, ts REAL NOT NULL,
    title TEXT NOT NULL, text BLOB NOT NULL, chars INTEGER NOT NULL,
    PRIMARY KEY (note_id, number)
);
"""
MIGRATIONS: list[Callable[[sqlite_utils.Database], object]] = [
    lambda db: run_script(db, VERSIONS_V1),
]
#: seconds without an author's edits after which its burst is a version
QUIET = 30.0
#: versions kept per note
MAX_VERSIONS = 100


class Versions:
    """The versions of one peer's notes; `read` gives a note's (title, text) now."""

    def __init__(
        self, store: Store, open_note: Callable[[str], Note], clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.open_note = open_note
        self.clock = clock
        if not store.readonly:  # a reader (no node) reads what a node kept, if any
            store.migrate_component("note_versions", MIGRATIONS)
        self._bursts: dict[str, tuple[str, float]] = {}  # note -> (author, last edit)

    def edited(self, note_id: str, author: str) -> None:
        """An edit of `author`'s was made or applied: someone else's burst ends here."""
        burst = self._bursts.get(note_id)
        if burst is not None and burst[0] != author:
            self._record(note_id, burst[0], burst[1])
        self._bursts[note_id] = (author, self.clock())

    def heard(self, kind: str, data: dict[str, Any]) -> None:
        """The notes' listener: a member's edits were applied."""
        if kind == "note":
            self.edited(data["note_id"], data["author"])

    def next_deadline(self) -> float | None:
        return min((at + QUIET for _, at in self._bursts.values()), default=None)

    def run_due(self, now: float) -> None:
        """Keep a version of each note whose burst went quiet."""
        for note_id, (author, at) in list(self._bursts.items()):
            if at + QUIET <= now:
                del self._bursts[note_id]
                self._record(note_id, author, at)

    def flush(self) -> None:
        """Keep the bursts not ended yet (the node stops)."""
        for note_id, (author, at) in list(self._bursts.items()):
            self._record(note_id, author, at)
        self._bursts.clear()

    def _record(self, note_id: str, author: str, ts: float) -> None:
        note = self.open_note(note_id)
        title, text = note.title, note.text
        rows = self.store.query(
            "SELECT MAX(number) AS last FROM note_versions WHERE note_id = ?", (note_id,)
        )
        number = (rows[0]["last"] or 0) + 1
        with self.store.atomic():
            self.store.execute(
                "INSERT INTO note_versions (note_id, number, author, ts, title, text, chars)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (note_id, number, author, ts, title, zlib.compress(text.encode()), len(text)),
            )
            self.store.execute(
                "DELETE FROM note_versions WHERE note_id = ? AND number <= ?",
                (note_id, number - MAX_VERSIONS),
            )

    def all(self, note_id: str) -> list[dict[str, Any]]:
        """A note's versions, oldest first: {version, author, ts, title, chars}."""
        if not self.store.has_table("note_versions"):  # a reader's, from before versions
            return []
        rows = self.store.query(
            "SELECT number, author, ts, title, chars FROM note_versions"
            " WHERE note_id = ? ORDER BY number",
            (note_id,),
        )
        return [
            {
                "version": row["number"],
                "author": row["author"],
                "ts": row["ts"],
                "title": row["title"],
                "chars": row["chars"],
            }
            for row in rows
        ]

    def text(self, note_id: str, version: int) -> str:
        """The text of one version; NoteUsageError if the note has no such version."""
        kept = self.all(note_id)
        rows = kept and self.store.query(
            "SELECT text FROM note_versions WHERE note_id = ? AND number = ?",
            (note_id, version),
        )
        if not rows:
            span = f"{kept[0]['version']}..{kept[-1]['version']}" if kept else "none yet"
            raise NoteUsageError(f"no version {version} of that note (versions kept: {span})")
        return zlib.decompress(bytes(rows[0]["text"])).decode()
