"""Documents: the notes' live documents and what the parts of the notes layer share.

:class:`Documents` is handed to each part of the notes layer (crdt/notes.py,
crdt/inbox.py, crdt/snapshots.py) by its constructor: the store, the cache
of open documents, the counters, the events for front ends, the hooks told
of every update, the updates pycrdt holds back, and compaction.

Locally every update, ours or not, is kept in SQLite; past `COMPACT_AFTER`
rows a note is compacted into one checkpoint (the merged state) signed with
this peer's key, so load time stays bounded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import nacl.bindings
import nacl.exceptions

from chat.messages import Chat
from crdt.errors import NoteError, NoteUsageError
from crdt.note import Note
from crdt.updates import held_back_among, inserts_held_back, integrate_stuck
from mesh.runtime.listeners import Listeners
from mesh.storage.store import Store

log = logging.getLogger("meshnotes.notes")

#: updates kept per note before they are compacted into a checkpoint
COMPACT_AFTER = 500

#: called with (note_id, update, origin) for every update made or applied here
UpdateHook = Callable[[str, bytes, object], None]


class Documents:
    """The documents of one peer's notes, loaded on first use, and the services around them.

    `on_local_edit(note_id, at_once)` is called when a document is edited here
    (see crdt/note.py).
    """

    def __init__(
        self, chat: Chat, store: Store, on_local_edit: Callable[[str, bool], None]
    ) -> None:
        self.chat = chat
        self.node = chat.node
        self.store = store
        self.identity = chat.identity
        self.own_key = chat.identity.public_key
        self.notes: dict[str, Note] = {}
        self.counters: dict[str, int] = {}
        self.listeners = Listeners(log, self.counters)
        #: called with (note_id, update, origin) for every update made or applied here;
        #: origin is what :meth:`crdt.notes.Notes.apply_external` was given (the bridge's client)
        self.update_hooks: list[UpdateHook] = []
        self._on_local_edit = on_local_edit
        self._kept: dict[str, int] = {}  # per note, held-back updates its last compaction kept
        # per note, applied updates pycrdt holds back (dependencies missing): pending
        self._pending: dict[str, list[bytes]] = {}

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the front ends' listeners."""
        self.listeners.emit(kind, data)

    def updated(self, note_id: str, update: bytes, origin: object = None) -> None:
        """Tell the update hooks of an update made or applied here (one that fails is counted)."""
        for hook in self.update_hooks:
            try:
                hook(note_id, update, origin)
            except Exception:
                self.count("hook_errors")
                log.exception("a note update hook failed")

    # -- documents ---------------------------------------------------------------

    def open(self, note_id: str) -> Note:
        """The note's document, loaded from its checkpoint and updates on first use."""
        note = self.notes.get(note_id)
        if note is not None:
            return note
        if not self.store.query("SELECT 1 FROM notes WHERE note_id = ?", (note_id,)):
            raise NoteUsageError(f"no note {note_id}")
        note = Note()
        checkpoint = self.store.query(
            "SELECT state, signature FROM note_checkpoints WHERE note_id = ?", (note_id,)
        )
        if checkpoint:
            state, signature = bytes(checkpoint[0]["state"]), bytes(checkpoint[0]["signature"])
            try:
                nacl.bindings.crypto_sign_open(signature + note_id.encode() + state, self.own_key)
            except (nacl.exceptions.BadSignatureError, ValueError) as exc:
                raise NoteError(f"the checkpoint of note {note_id} is corrupt") from exc
            note.apply_update(state)
        blobs = [
            bytes(row["update_blob"])
            for row in self.store.query(
                "SELECT update_blob FROM note_updates WHERE note_id = ? ORDER BY id", (note_id,)
            )
        ]
        for blob in blobs:
            note.apply_update(blob)
        self.check_pending(note_id, note, blobs)
        note.on_local_edit = lambda now, n=note_id: self._on_local_edit(n, now)
        self.notes[note_id] = note
        return note

    # -- updates pycrdt holds back -----------------------------------------------------

    def check_pending(self, note_id: str, document: Note, updates: list[bytes]) -> None:
        """Remember applied updates pycrdt holds back (missing dependencies): no snapshot until
        they are integrated, as the document's state would not hold them. Those held back
        whose dependency has come are applied again (:func:`crdt.updates.integrate_stuck`).

        Only their inserts are looked at: reading each update's delete set costs more than
        applying it (see crdt/updates.py), so a held-back deletion goes unnoticed here.
        """
        if not updates:
            return
        # one whose dependency came meanwhile may be stuck: see integrate_stuck
        waiting = integrate_stuck(
            document.apply_update, document.state_vector, self._pending.get(note_id, []), updates
        )
        if waiting:
            self._pending[note_id] = waiting
        else:
            self._pending.pop(note_id, None)

    def has_pending(self, note_id: str, document: Note) -> bool:
        """Whether pycrdt still holds back inserts of an update applied to the note."""
        waiting = self._pending.get(note_id)
        if not waiting:
            return False
        have = document.state_vector()
        waiting[:] = [u for u in waiting if inserts_held_back(u, have)]
        return bool(waiting)

    # -- compaction ------------------------------------------------------------------

    def maybe_compact(self, note_id: str) -> None:
        """Compact a note once it holds COMPACT_AFTER updates more than its last compaction
        kept, and none of ours is unsent."""
        rows = self.store.query(
            "SELECT COUNT(*) AS n, SUM(unsent) AS unsent FROM note_updates WHERE note_id = ?",
            (note_id,),
        )[0]
        if rows["n"] - self._kept.get(note_id, 0) >= COMPACT_AFTER and not rows["unsent"]:
            self.compact(note_id)

    def compact(self, note_id: str) -> None:
        """Replace a note's stored updates with one signed checkpoint of its state.

        The state leaves out what pycrdt holds back (updates whose dependencies
        are missing): those updates stay stored, to be applied again after the
        checkpoint, until a later compaction finds them integrated.
        """
        note = self.open(note_id)
        state = note.update_since(None)
        vector = note.state_vector()
        signature = self.identity.sign(note_id.encode() + state)
        rows = self.store.query(
            "SELECT id, update_blob FROM note_updates WHERE note_id = ? AND unsent = 0",
            (note_id,),
        )
        blobs = [bytes(r["update_blob"]) for r in rows]
        kept = [rows[i]["id"] for i in held_back_among(blobs, vector)]
        with self.store.atomic():
            self.store.execute(
                "INSERT OR REPLACE INTO note_checkpoints (note_id, state, signature)"
                " VALUES (?, ?, ?)",
                (note_id, state, signature),
            )
            self.store.execute(
                "DELETE FROM note_updates WHERE note_id = ? AND unsent = 0"
                " AND id NOT IN (SELECT value FROM json_each(?))",
                (note_id, json.dumps(kept)),
            )
        self._kept[note_id] = len(kept)
        self.count("notes_compacted")
        if kept:
            self.count("notes_compaction_kept", len(kept))
