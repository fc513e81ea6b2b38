"""Shared notes on the mesh: the Python API, live sync, catch-up, persistence and compaction.

A note belongs to a room. Each coalesced local update is sealed with the
room's document key of the current epoch (XChaCha20-Poly1305; the header —
room, note, epoch, author, sequence — is the associated data), signed, and
flooded to the mesh as a room envelope (type NOTE) numbered with the
author's per-room sequence. Every node keeps those envelopes in its room
log, so members catch up from whichever node is online, relays included,
which hold only ciphertext (see mesh/storage/roomlog.py).

The payload and its sealing are in crdt/payload.py, receiving in
crdt/inbox.py, snapshots of a note's whole state (catch-up sends one and the
tail) in crdt/snapshots.py, versions in crdt/versions.py, the documents and
what those parts share in crdt/documents.py.

Notes never schedule on the event loop: what is due later (a flush when the
coalescing window closes, a snapshot once a note is quiet, envelopes waiting
to be applied together) is told by :meth:`Notes.next_deadline` and done by
:meth:`Notes.run_due`, which the I/O edge (crdt/service.py) calls; `wake`
tells it that a new deadline came.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pycrdt

from chat.messages import Chat
from crdt import payload
from crdt.documents import Documents
from crdt.editing import NoteEditing, check_title
from crdt.errors import NoteUsageError
from crdt.holding import RELEASE_SLICE
from crdt.inbox import Inbox
from crdt.note import Note
from crdt.snapshots import Snapshots
from crdt.updates import merge_many
from crdt.versions import Versions
from mesh.errors import MeshError
from mesh.storage.store import Store, run_script
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

log = logging.getLogger("meshnotes.notes")

#: local edits within this many seconds travel as one update
COALESCE_WINDOW = 0.03
#: ... unless they grow past this many bytes first
FLUSH_BYTES = 48 * 1024
#: text imported in pieces of this many characters (each must fit in one envelope)

SCHEMA_V1 = """
        CREATE TABLE notes (
            note_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL, updated_at REAL NOT NULL
        );
        CREATE TABLE note_updates (
            id INTEGER PRIMARY KEY AUTOINCREMENT, note_id TEXT NOT NULL, update_blob BLOB NOT NULL,
            unsent INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX note_updates_note ON note_updates(note_id, id);
        CREATE TABLE note_checkpoints (
            note_id TEXT PRIMARY KEY, state BLOB NOT NULL, signature BLOB NOT NULL
        );
        CREATE TABLE note_applied (
            room_id TEXT NOT NULL, author TEXT NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (room_id, author, seq)
        );
    """

SCHEMA_V2 = """
        CREATE TABLE note_covered (
            note_id TEXT NOT NULL, author TEXT NOT NULL, upto INTEGER NOT NULL,
            PRIMARY KEY (note_id, author)
        );
    """

MIGRATIONS: list[Callable[[Any], object]] = [
    lambda db: run_script(db, SCHEMA_V1),
    lambda db: run_script(db, SCHEMA_V2),
]


class Notes(NoteEditing):
    """The notes of one peer.

    `wake` is called when work became due earlier than :meth:`next_deadline`
    said before (see the module's docstring); without it, envelopes are applied
    as they come and edits are sent by :meth:`flush` only (a plain script).
    """

    def __init__(self, chat: Chat, store: Store, wake: Callable[[], None] | None = None) -> None:
        self.chat = chat
        self.node = chat.node
        self.store = store
        self.identity = chat.identity
        self.wake = wake
        store.migrate_component("notes", MIGRATIONS)
        self.documents = Documents(chat, store, self._local_edit, self._released)
        self.snapshots = Snapshots(self.documents)
        self.inbox = Inbox(self.documents, self.snapshots)
        self.versions = Versions(store, self.documents.open, self.node.clock)
        #: the open documents, counters, front ends' listeners and update hooks (called with
        #: (note_id, update, origin) for every update; origin: apply_external's, or None)
        self.notes = self.documents.notes
        self.counters = self.documents.counters
        self.listeners = self.documents.listeners
        self.update_hooks = self.documents.update_hooks
        self._buffers: dict[str, list[bytes]] = {}
        self._buffered: dict[str, int] = {}  # bytes in each buffer
        self._flush_due: dict[str, float] = {}  # note -> when its edits are sent
        self.node.on_deliver(EnvelopeType.NOTE, self._deliver)
        self.listeners.append(self.versions.heard)  # a member's edits arrived
        chat.rooms.on_document_keys(self._document_keys)
        chat.rooms.on_membership(self._membership)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Catch up on what the room logs hold (envelopes that came while we were away)."""
        # pycrdt imports anyio's backend when the first document is made (~16 ms, measured):
        # here, not when the first note arrives (a new member's catch-up)
        pycrdt.Doc()
        for room in self.chat.rooms.joined():
            self.inbox.replay_room_log(room)
            self._send_unsent(encode_peer_id(room))

    def stop(self) -> None:
        for note_id in list(dict.fromkeys([*self._buffers, *self._flush_due, *self.notes])):
            self.flush(note_id)
        self.versions.flush()
        self.snapshots.stop()

    def _count(self, name: str) -> None:
        self.documents.count(name)

    # -- what is due -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`run_due` has work next, on the node's clock (None: nothing is due)."""
        if self.inbox.waiting or self.documents.ready:
            return self.node.clock()
        times = [*self._flush_due.values()]
        for due in (self.snapshots.next_deadline(), self.versions.next_deadline()):
            if due is not None:
                times.append(due)
        return min(times, default=None)

    def run_due(self, now: float) -> None:
        """Do what is due by `now`: apply the envelopes that came, send the edits whose window
        closed, publish the snapshots of notes that went quiet."""
        if self.inbox.waiting:
            self.inbox.drain()
        if self.documents.ready:
            self.documents.release_ready(RELEASE_SLICE)
        for note_id in [n for n, at in self._flush_due.items() if at <= now]:
            try:
                self.flush(note_id)
            except MeshError as exc:
                self._flush_due.pop(note_id, None)
                self._count("notes_store_error")
                log.warning("the edits of note %s are not sent yet: %s", note_id, exc)
        self.versions.run_due(now)
        for note_id in self.snapshots.take_due(now):
            try:
                self._publish(note_id)
            except MeshError as exc:
                self._count("notes_snapshot_error")
                log.warning("no snapshot of note %s: %s", note_id, exc)

    def _released(self) -> None:
        """Held updates were released: applied at once without an I/O edge, else in slices
        from :meth:`run_due` (thousands may come free at once: see crdt/holding.py)."""
        if self.wake is None:
            self.documents.release_ready()
        else:
            self.wake()

    def _deliver(self, envelope: Envelope) -> None:
        """From the node: held until the current burst is read (see :meth:`Inbox.queue`)."""
        if self.inbox.queue(envelope):
            if self.wake is None:
                self.inbox.drain()
            else:
                self.wake()

    # -- names -----------------------------------------------------------------

    def resolve(self, name: str) -> str:
        """A note by id, unambiguous id prefix, or title."""
        name = name.strip()
        rows = self.store.query(
            "SELECT note_id FROM notes WHERE note_id = ? OR title = ?", (name.lower(), name)
        )
        if len(rows) == 1:
            return str(rows[0]["note_id"])
        if len(rows) > 1:
            raise NoteUsageError(f"{len(rows)} notes are called {name!r}; use the note id")
        rows = self.store.query(
            "SELECT note_id FROM notes WHERE note_id LIKE ?", (name.lower() + "%",)
        )
        if len(rows) == 1 and name:
            return str(rows[0]["note_id"])
        if rows and name:
            raise NoteUsageError(f"{name!r} matches {len(rows)} notes; give more of the id")
        raise NoteUsageError(f"no note matches {name!r}")

    # -- API -------------------------------------------------------------------------

    def new(self, room: str, title: str) -> str:
        """Create a note in a room you belong to; return its id."""
        title = check_title(title)
        conv_id = self.chat.rooms.resolve(room)
        state = self.chat.rooms.state(conv_id)
        if self.identity.public_key not in state.members:
            raise NoteUsageError("you are not a member of that room")
        note_id = encode_peer_id(payload.new_note_id(state.room_id))
        now = self.node.clock()
        self.store.execute(
            "INSERT INTO notes (note_id, room_id, title, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (note_id, conv_id, title, now, now),
        )
        note = self.documents.open(note_id)
        with note.doc.transaction():
            note.set_meta("title", title)
            note.set_meta("created", int(now * 1000))
            note.set_meta("authors", [self.identity.peer_id])
        self.flush(note_id)
        return note_id

    def get(self, name: str) -> Note:
        """The live document of a note (edits on it sync to the room)."""
        return self.documents.open(self.resolve(name))

    def document(self, note_id: str) -> Note:
        """The live document of a note by its id."""
        return self.documents.open(note_id)

    def room_of(self, note_id: str) -> str | None:
        """The room a note belongs to (None for a note not stored here)."""
        rows = self.store.query("SELECT room_id FROM notes WHERE note_id = ?", (note_id,))
        return str(rows[0]["room_id"]) if rows else None

    def all(self, room: str | None = None, deleted: bool = False) -> list[dict[str, Any]]:
        """The notes (of a room), with `deleted` those deleted too: {note_id, room_id, title,
        length, updated, deleted}."""
        if room is None:
            rows = self.store.query("SELECT * FROM notes ORDER BY room_id, title, note_id")
        else:
            conv_id = self.chat.rooms.resolve(room)
            rows = self.store.query(
                "SELECT * FROM notes WHERE room_id = ? ORDER BY title, note_id", (conv_id,)
            )
        found = [
            {
                "note_id": r["note_id"],
                "room_id": r["room_id"],
                "title": r["title"],
                "length": len(self.documents.open(r["note_id"]).text),
                "updated": r["updated_at"],
                "deleted": self.deleted(r["note_id"]) is not None,
            }
            for r in rows
        ]
        return [note for note in found if deleted or not note["deleted"]]

    def _room_authority(self, note_id: str) -> tuple[set[str], str | None]:
        """Who may state a note's tombstones (its room's members, past ones too) and the admin."""
        room = self.room_of(note_id)
        if room is None:
            return set(), None
        state = self.chat.rooms.state(room)
        admin = None if state.admin is None else encode_peer_id(state.admin)
        return {encode_peer_id(k) for k in state.members | state.departed}, admin

    def apply_external(self, note_id: str, update: bytes, origin: object = None) -> None:
        """An update made by a client of this peer (the Yjs bridge): apply it, send it on.

        It is kept as received (see crdt/note.py) and goes out with the note's
        next flush; the other clients hear of it at once.
        """
        self.documents.open(note_id)
        self.documents.integrate(note_id, [update])
        self.documents.settle(note_id)
        buffer = self._buffers.setdefault(note_id, [])
        buffer.append(update)
        size = self._buffered.get(note_id, 0) + len(update)
        self._buffered[note_id] = size
        self.documents.updated(note_id, update, origin)
        self._local_edit(note_id, size >= FLUSH_BYTES)

    def _local_edit(self, note_id: str, now: bool) -> None:
        """An edit here: flush when the window closes (or at once when it grew large).

        Keystrokes are not written one by one (each write is a synced
        transaction): a crash loses at most the last window of typing.
        """
        if self.wake is None:
            if now:
                self.flush(note_id)
            return  # no I/O edge (a plain script): flush() sends it
        clock = self.node.clock()
        if now:
            # not from inside the edit (it may be within an open transaction): next turn
            self._flush_due[note_id] = clock
        elif note_id not in self._flush_due:
            self._flush_due[note_id] = clock + COALESCE_WINDOW
        else:
            return
        self.wake()

    def flush(self, note_id: str) -> None:
        """Send a note's local edits (and a bridge client's updates) now, as one update."""
        self._flush_due.pop(note_id, None)
        buffer = self._buffers.pop(note_id, None) or []
        self._buffered.pop(note_id, None)
        note = self.notes.get(note_id)
        local = note.take_local_update() if note is not None else None
        if local is not None:
            buffer.append(local)
            self.documents.updated(note_id, local, None)
        if buffer:
            self.versions.edited(note_id, self.identity.peer_id)
        room = self.room_of(note_id)
        with self.store.atomic():  # one commit (one fsync) per flush
            if buffer:
                self.store.execute(
                    "INSERT INTO note_updates (note_id, update_blob, unsent) VALUES (?, ?, 1)",
                    (note_id, merge_many(buffer)),
                )
            outgoing = self._seal_unsent(room, only=note_id) if room is not None else []
        self._send(outgoing)

    def _send_unsent(self, conv_id: str) -> None:
        """Seal and send every unsent local update of a room's notes (when its key is known)."""
        with self.store.atomic():
            outgoing = self._seal_unsent(conv_id)
        self._send(outgoing)

    def _send(self, outgoing: list[tuple[str, Envelope]]) -> None:
        """Send sealed updates: only after their transaction committed, so a crash can
        neither lose one that went out nor send two under one sequence number."""
        for note_id, envelope in outgoing:
            self.node.send(envelope)
            self._count("notes_sent")
            self.documents.maybe_compact(note_id)
            self.snapshots.sent(note_id, len(envelope.payload))
        due = False
        for note_id in dict.fromkeys(n for n, _ in outgoing):
            due = self.snapshots.due(note_id, self.node.clock()) is not None or due
        if due and self.wake is not None:
            self.wake()

    def _seal_unsent(self, conv_id: str, only: str | None = None) -> list[tuple[str, Envelope]]:
        """Seal unsent local updates into envelopes (inside the caller's transaction)."""
        state = self.chat.rooms.state(conv_id)
        key = self.chat.rooms.document_key(conv_id, state.epoch)
        if key is None or self.identity.public_key not in state.members:
            return []  # sent once the admin's document key arrives
        rows = self.store.query(
            "SELECT u.id, u.note_id, u.update_blob FROM note_updates u JOIN notes n"
            " ON n.note_id = u.note_id WHERE u.unsent = 1 AND n.room_id = ?"
            + (" AND u.note_id = ?" if only else "")
            + " ORDER BY u.id",
            (conv_id, only) if only else (conv_id,),
        )
        by_note: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_note.setdefault(r["note_id"], []).append(r)
        outgoing: list[tuple[str, Envelope]] = []
        for note_id, updates in by_note.items():
            # merged in batches that fit one envelope
            batches: list[list[dict[str, Any]]] = [[]]
            size = 0
            for update in updates:
                blob_size = len(update["update_blob"])
                if batches[-1] and size + blob_size > FLUSH_BYTES:
                    batches.append([])
                    size = 0
                batches[-1].append(update)
                size += blob_size
            for batch in batches:
                envelope = self._seal_batch(conv_id, note_id, state.epoch, key, batch)
                if envelope is not None:
                    outgoing.append((note_id, envelope))
        return outgoing

    def _seal_batch(
        self, conv_id: str, note_id: str, epoch: int, key: bytes, rows: list[dict[str, Any]]
    ) -> Envelope | None:
        update = merge_many([bytes(r["update_blob"]) for r in rows])
        room, note = decode_peer_id(conv_id), decode_peer_id(note_id)
        now = self.node.clock()
        # checked before a sequence number is taken: a number never sent would leave a gap
        # that stalls this author's room-log vector for good
        if not payload.fits(note, epoch, len(update)):
            # one edit too big for an envelope: it stays local (marked sent, so it is not
            # tried again at every flush and the note can still be compacted); say so
            self._count("notes_update_too_large")
            log.warning("a note update of %d bytes is too large to send; kept local", len(update))
            for r in rows:
                self.store.execute("UPDATE note_updates SET unsent = 0 WHERE id = ?", (r["id"],))
            return None
        seq = self.store.next_counter(f"roomseq:{conv_id}")
        envelope = self.node.router.make(
            EnvelopeType.NOTE,
            now,
            dest_kind=DestKind.ROOM,
            dest=room,
            payload=payload.seal_payload(
                key, room, note, epoch, self.identity.public_key, seq, update
            ),
            seq=seq,
        )
        self.store.execute(
            "INSERT OR IGNORE INTO note_applied (room_id, author, seq) VALUES (?, ?, ?)",
            (conv_id, self.identity.peer_id, seq),
        )
        for r in rows:
            self.store.execute("UPDATE note_updates SET unsent = 0 WHERE id = ?", (r["id"],))
        self.store.execute("UPDATE notes SET updated_at = ? WHERE note_id = ?", (now, note_id))
        return envelope

    # -- remote updates ------------------------------------------------------------

    def receive(self, envelopes: list[Envelope]) -> None:
        """Apply NOTE envelopes now, together (see crdt/inbox.py); the node's arrive by
        themselves."""
        self.inbox.apply_all(envelopes)

    # -- snapshots and catch-up ---------------------------------------------------------

    def snapshot(self, name: str) -> int:
        """Publish the note's whole state as a snapshot; return its number of parts (0: none).

        See :meth:`crdt.snapshots.Snapshots.publish` for when none is made.
        """
        return self._publish(self.resolve(name))

    def _publish(self, note_id: str) -> int:
        self.flush(note_id)
        return self.snapshots.publish(note_id)

    def _membership(self, conv_id: str, event: str) -> None:
        """Membership changed: held updates may open now, unsent ones may go."""
        self.inbox.replay_room_log(decode_peer_id(conv_id))
        self._send_unsent(conv_id)

    def _document_keys(self, conv_id: str, epochs: list[int]) -> None:
        """Keys came: held updates may open now, unsent ones may go."""
        self._membership(conv_id, "dockeys")
        # we may have joined: neighbours' room logs hold what came before
        self.node.request_catch_up()

    def compact(self, note_id: str) -> None:
        """Replace a note's stored updates with one signed checkpoint of its state
        (see :meth:`crdt.documents.Documents.compact`)."""
        self.documents.compact(note_id)

    def status(self) -> dict[str, Any]:
        row = self.store.query("SELECT COUNT(*) AS n FROM notes")[0]
        return {"notes": row["n"], "counters": dict(sorted(self.counters.items()))}
