"""Documents: the notes' live documents and what the parts of the notes layer share.

:class:`Documents` is handed to each part of the notes layer (crdt/notes.py,
crdt/inbox.py, crdt/snapshots.py) by its constructor: the store, the cache
of open documents, the counters, the events for front ends, the hooks told
of every update, the updates held back until what they build on has come
(crdt/holding.py), and compaction.

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
from crdt.holding import RELEASE_SLICE, HeldUpdates
from crdt.note import Note
from crdt.updates import held_back_among
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
    (see crdt/note.py); `on_ready()` when held updates were released, for
    :meth:`release_ready` (at once, or in slices from the event loop).
    """

    def __init__(
        self,
        chat: Chat,
        store: Store,
        on_local_edit: Callable[[str, bool], None],
        on_ready: Callable[[], None] = lambda: None,
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
        self._on_ready = on_ready
        self._kept: dict[str, int] = {}  # per note, held-back updates its last compaction kept
        self._held: dict[str, HeldUpdates] = {}  # per note, updates waiting for what they build on

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
        held = self._held[note_id] = HeldUpdates(note.apply_update, note.state_vector)
        for blob in blobs:
            held.offer(blob)
        held.release()  # a note opens whole
        note.on_local_edit = lambda now, n=note_id: self._on_local_edit(n, now)
        self.notes[note_id] = note
        return note

    # -- updates held back ------------------------------------------------------------

    def integrate(self, note_id: str, updates: list[bytes]) -> None:
        """Apply updates from elsewhere to an open note, each once the note has what it builds
        on (see crdt/holding.py); those they release wait for :meth:`settle`."""
        held = self._held[note_id]
        for update in updates:
            held.offer(update)

    def settle(self, note_id: str) -> None:
        """Apply a slice of the note's released updates; the rest, if any, by
        :meth:`release_ready` when `on_ready` says so."""
        held = self._held[note_id]
        if held.ready:
            held.release(RELEASE_SLICE)
            if held.ready:
                self._on_ready()

    @property
    def ready(self) -> bool:
        """Whether released updates wait for :meth:`release_ready`."""
        return any(h.ready for h in self._held.values())

    def release_ready(self, limit: int | None = None) -> int:
        """Apply up to `limit` (all: None) released updates, note by note; return how many."""
        done = 0
        for held in self._held.values():
            if limit is not None and done >= limit:
                break
            done += held.release(None if limit is None else limit - done)
        return done

    def has_pending(self, note_id: str) -> bool:
        """Whether an update applied to the note is not integrated yet (see crdt/holding.py)."""
        held = self._held.get(note_id)
        return held is not None and held.pending

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
        # those known held are kept without a look; the others are checked against the state
        waiting = self._held[note_id].held()
        kept = [r["id"] for r, blob in zip(rows, blobs, strict=True) if blob in waiting]
        others = [i for i, blob in enumerate(blobs) if blob not in waiting]
        kept += [rows[others[i]]["id"] for i in held_back_among([blobs[i] for i in others], vector)]
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
