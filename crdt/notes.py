"""Shared notes on the mesh: the Python API, live sync, catch-up, persistence and compaction.

A note belongs to a room. Each coalesced local update is sealed with the
room's document key of the current epoch (XChaCha20-Poly1305; the header —
room, note, epoch, author, sequence — is the associated data), signed, and
flooded to the mesh as a room envelope (type NOTE) numbered with the
author's per-room sequence. Every node keeps those envelopes in its room
log, so members catch up from whichever node is online, relays included,
which hold only ciphertext (see mesh/roomlog.py).

Payload: msgpack ``[note_id (32 bytes), epoch, sealed update]``; a snapshot
part (the note's whole state, cut into parts) adds ``[part, parts, covers]``,
the per-author sequence vector the state includes, so that catch-up sends a
snapshot and the tail instead of the whole history (see mesh/roomlog.py).

Locally every update, ours or not, is kept in SQLite; past
`COMPACT_AFTER` rows a note is compacted into one checkpoint (the merged
state) signed with this peer's key, so load time stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import nacl.bindings
import nacl.exceptions
import pycrdt

from crdt.errors import NoteError, NoteUpdateError, NoteUsageError
from crdt.note import Note, reraise_unless_decoding
from mesh.chat import Chat
from mesh.envelope import MAX_PAYLOAD, DestKind, Envelope, EnvelopeType
from mesh.errors import ChatError, MeshError
from mesh.identity import decode_peer_id, encode_peer_id
from mesh.listeners import Listeners
from mesh.roomlog import MAX_SNAPSHOT_PARTS, SnapshotHeader
from mesh.senderkey import NONCE_SIZE, new_chain_key, open_sealed, seal
from mesh.store import Store

log = logging.getLogger("meshnotes.notes")

#: local edits within this many seconds travel as one update
COALESCE_WINDOW = 0.03
#: ... unless they grow past this many bytes first
FLUSH_BYTES = 48 * 1024
#: updates kept per note before they are compacted into a checkpoint
COMPACT_AFTER = 500
#: text imported in pieces of this many characters (each must fit in one envelope)
IMPORT_PIECE = 16 * 1024
MAX_TITLE = 200
#: a member publishes a snapshot of a note once it sent this many bytes of its updates since
#: the last one and the note was quiet for SNAPSHOT_QUIET seconds (or at once past SNAPSHOT_FORCE)
SNAPSHOT_AFTER = 64 * 1024
SNAPSHOT_QUIET = 0.5
SNAPSHOT_FORCE = 1024 * 1024
#: plaintext bytes of state per snapshot envelope
SNAPSHOT_PART = 96 * 1024
#: snapshots being put together from their parts at most (the oldest is dropped)
MAX_ASSEMBLING = 32
TAG_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES

MIGRATIONS: list[Callable[[Any], object]] = [
    lambda db: db.executescript("""
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
    """),
    lambda db: db.executescript("""
        CREATE TABLE note_covered (
            note_id TEXT NOT NULL, author TEXT NOT NULL, upto INTEGER NOT NULL,
            PRIMARY KEY (note_id, author)
        );
    """),
]


@dataclass(frozen=True)
class _Opened:
    """A NOTE envelope, checked and decrypted, not yet applied."""

    conv_id: str
    note_id: str
    author_id: str
    seq: int
    update: bytes
    snapshot: SnapshotHeader | None = None  # a part of a snapshot (update = its chunk)
    parts: tuple[int, ...] = ()  # a whole snapshot: the sequence numbers of its parts


def merge_many(updates: list[bytes], group: int = 64) -> bytes:
    """Merge updates into one, in groups: merging thousands at once costs ~15x more (measured)."""
    while len(updates) > 1:
        updates = [
            pycrdt.merge_updates(*updates[i : i + group])
            if len(updates[i : i + group]) > 1
            else updates[i]
            for i in range(0, len(updates), group)
        ]
    return updates[0]


def _aad(
    room: bytes,
    note: bytes,
    epoch: int,
    author: bytes,
    seq: int,
    snapshot: SnapshotHeader | None = None,
) -> bytes:
    aad = room + note + struct.pack(">I", epoch) + author + struct.pack(">Q", seq)
    if snapshot is not None:
        aad += b"snapshot" + bytes(msgpack.packb(snapshot.encode()))
    return aad


def _state_map(state: bytes) -> dict[int, int]:
    """A Yjs state vector (varuint count, then client and clock pairs) as {client: clock}."""
    values, value, shift = [], 0, 0
    for byte in state:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            values.append(value)
            value, shift = 0, 0
    pairs = values[1:]
    return dict(zip(pairs[0::2], pairs[1::2], strict=False))


class Notes:
    """The notes of one peer. Call :meth:`start` inside the event loop."""

    def __init__(self, chat: Chat, store: Store) -> None:
        self.chat = chat
        self.node = chat.node
        self.store = store
        self.identity = chat.identity
        self.notes: dict[str, Note] = {}
        self.counters: dict[str, int] = {}
        self.listeners = Listeners(log, self.counters)
        #: called with (note_id, update, origin) for every update made or applied here;
        #: origin is what :meth:`apply_external` was given (the bridge passes its client)
        self.update_hooks: list[Callable[[str, bytes, object], None]] = []
        self._buffers: dict[str, list[bytes]] = {}
        self._buffered: dict[str, int] = {}  # bytes in each buffer
        self._incoming: list[Envelope] = []
        self._drain_handle: asyncio.Handle | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._since_snapshot: dict[str, int] = {}  # bytes we sent since our last snapshot
        self._snapshot_timers: dict[str, asyncio.TimerHandle] = {}
        # (room, note, author, first seq) -> {part: opened part}
        self._assembling: dict[tuple[str, str, str, int], dict[int, _Opened]] = {}
        # per note, the state vectors of applied updates not (yet) integrated: pending
        self._pending: dict[str, list[dict[int, int]]] = {}
        self._covered: dict[str, dict[str, int]] = {}  # note -> {author: upto}, from snapshots
        store.migrate_component("notes", MIGRATIONS)
        self.node.on_deliver(EnvelopeType.NOTE, self._queue_envelope)
        chat.listeners.append(self._on_chat_event)
        if self.node.roomlog is not None:
            self.node.roomlog.snapshot_authors = self._snapshot_authors

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Catch up on what the room logs hold (envelopes that came while we were away)."""
        if self.node.roomlog is not None:
            self.node.roomlog.snapshot_authors = self._snapshot_authors
        # pycrdt imports anyio's backend when the first document is made (~16 ms, measured):
        # here, not when the first note arrives (a new member's catch-up)
        pycrdt.Doc()
        for room in self.chat.rooms.joined():
            self._replay_room_log(room)
            self._send_unsent(encode_peer_id(room))

    def stop(self) -> None:
        for note_id in list(dict.fromkeys([*self._buffers, *self._timers, *self.notes])):
            self.flush(note_id)
        for timer in self._snapshot_timers.values():
            timer.cancel()
        self._snapshot_timers.clear()

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        self.listeners.emit(kind, data)

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
        title = title.strip()
        if not 0 < len(title) <= MAX_TITLE:
            raise NoteUsageError(f"a title has 1..{MAX_TITLE} characters")
        conv_id = self.chat.rooms.resolve(room)
        state = self.chat.rooms.state(conv_id)
        if self.identity.public_key not in state.members:
            raise NoteUsageError("you are not a member of that room")
        note_id = encode_peer_id(new_chain_key())
        now = self.node.clock()
        self.store.execute(
            "INSERT INTO notes (note_id, room_id, title, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (note_id, conv_id, title, now, now),
        )
        note = self._open(note_id)
        with note.doc.transaction():
            note.set_meta("title", title)
            note.set_meta("created", int(now * 1000))
            note.set_meta("authors", [self.identity.peer_id])
        self.flush(note_id)
        return note_id

    def get(self, name: str) -> Note:
        """The live document of a note (edits on it sync to the room)."""
        return self._open(self.resolve(name))

    def all(self, room: str | None = None) -> list[dict[str, Any]]:
        if room is None:
            rows = self.store.query("SELECT * FROM notes ORDER BY room_id, title, note_id")
        else:
            conv_id = self.chat.rooms.resolve(room)
            rows = self.store.query(
                "SELECT * FROM notes WHERE room_id = ? ORDER BY title, note_id", (conv_id,)
            )
        return [
            {
                "note_id": r["note_id"],
                "room_id": r["room_id"],
                "title": r["title"],
                "length": len(self._open(r["note_id"]).text),
                "updated": r["updated_at"],
            }
            for r in rows
        ]

    def rename(self, name: str, title: str) -> None:
        """Give a note a new title (it travels like any edit)."""
        title = title.strip()
        if not 0 < len(title) <= MAX_TITLE:
            raise NoteUsageError(f"a title has 1..{MAX_TITLE} characters")
        note_id = self.resolve(name)
        self._open(note_id).set_meta("title", title)
        self.store.execute("UPDATE notes SET title = ? WHERE note_id = ?", (title, note_id))
        self.flush(note_id)

    def cat(self, name: str) -> str:
        return self.get(name).text

    def append(self, name: str, text: str) -> None:
        note_id = self.resolve(name)
        self._open(note_id).append(text)
        self.flush(note_id)

    def import_file(self, room: str, path: Path, title: str | None = None) -> str:
        """Create a note from a Markdown (or any UTF-8 text) file; return its id."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NoteUsageError(f"cannot read {path}: {exc}") from exc
        return self.import_text(room, title or path.stem, text)

    def import_text(self, room: str, title: str, text: str) -> str:
        """Create a note holding `text`, sent in pieces that each fit one envelope."""
        note_id = self.new(room, title)
        note = self._open(note_id)
        for start in range(0, len(text), IMPORT_PIECE):
            note.append(text[start : start + IMPORT_PIECE])
            self.flush(note_id)
        return note_id

    def export(self, name: str, path: Path) -> int:
        """Write a note's text to a file; return the number of characters written."""
        text = self.cat(name)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise NoteUsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return len(text)

    # -- documents ---------------------------------------------------------------

    def _open(self, note_id: str) -> Note:
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
                nacl.bindings.crypto_sign_open(
                    signature + note_id.encode() + state, self.identity.public_key
                )
            except (nacl.exceptions.BadSignatureError, ValueError) as exc:
                raise NoteError(f"the checkpoint of note {note_id} is corrupt") from exc
            note.apply_update(state)
        for row in self.store.query(
            "SELECT update_blob FROM note_updates WHERE note_id = ? ORDER BY id", (note_id,)
        ):
            blob = bytes(row["update_blob"])
            note.apply_update(blob)
            self._check_pending(note_id, note, blob)
        note.on_local_edit = lambda now, n=note_id: self._local_edit(n, now)
        self.notes[note_id] = note
        return note

    def apply_external(self, note_id: str, update: bytes, origin: object = None) -> None:
        """An update made by a client of this peer (the Yjs bridge): apply it, send it on.

        It is kept as received (see crdt/note.py) and goes out with the note's
        next flush; the other clients hear of it at once.
        """
        self._open(note_id).apply_update(update)
        buffer = self._buffers.setdefault(note_id, [])
        buffer.append(update)
        size = self._buffered.get(note_id, 0) + len(update)
        self._buffered[note_id] = size
        self._call_hooks(note_id, update, origin)
        self._local_edit(note_id, size >= FLUSH_BYTES)

    def _local_edit(self, note_id: str, now: bool) -> None:
        """An edit here: flush when the window closes (or at once when it grew large).

        Keystrokes are not written one by one (each write is a synced
        transaction): a crash loses at most the last window of typing.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if now:
                self.flush(note_id)
            return  # no loop (a plain script): flush() sends it
        if now:
            # not from inside the edit (it may be within an open transaction): next turn
            timer = self._timers.pop(note_id, None)
            if timer is not None:
                timer.cancel()
            self._timers[note_id] = loop.call_later(0, self.flush, note_id)
        elif note_id not in self._timers:
            self._timers[note_id] = loop.call_later(COALESCE_WINDOW, self.flush, note_id)

    def _call_hooks(self, note_id: str, update: bytes, origin: object) -> None:
        for hook in self.update_hooks:
            try:
                hook(note_id, update, origin)
            except Exception:
                self._count("hook_errors")
                log.exception("a note update hook failed")

    def flush(self, note_id: str) -> None:
        """Send a note's local edits (and a bridge client's updates) now, as one update."""
        timer = self._timers.pop(note_id, None)
        if timer is not None:
            timer.cancel()
        buffer = self._buffers.pop(note_id, None) or []
        self._buffered.pop(note_id, None)
        note = self.notes.get(note_id)
        local = note.take_local_update() if note is not None else None
        if local is not None:
            buffer.append(local)
            self._call_hooks(note_id, local, None)
        row = self.store.query("SELECT room_id FROM notes WHERE note_id = ?", (note_id,))
        with self.store.atomic():  # one commit (one fsync) per flush
            if buffer:
                self.store.execute(
                    "INSERT INTO note_updates (note_id, update_blob, unsent) VALUES (?, ?, 1)",
                    (note_id, merge_many(buffer)),
                )
            outgoing = self._seal_unsent(row[0]["room_id"], only=note_id) if row else []
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
            self._maybe_compact(note_id)
            self._since_snapshot[note_id] = self._since_snapshot.get(note_id, 0) + len(
                envelope.payload
            )
        for note_id in dict.fromkeys(n for n, _ in outgoing):
            self._snapshot_due(note_id)

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
        # that stalls this author's room-log vector for good (sealed = nonce + update + tag)
        sealed_size = NONCE_SIZE + len(update) + TAG_SIZE
        if len(msgpack.packb([note, epoch, bytes(sealed_size)])) > MAX_PAYLOAD - 64:
            # one edit too big for an envelope: it stays local (marked sent, so it is not
            # tried again at every flush and the note can still be compacted); say so
            self._count("notes_update_too_large")
            log.warning("a note update of %d bytes is too large to send; kept local", len(update))
            for r in rows:
                self.store.execute("UPDATE note_updates SET unsent = 0 WHERE id = ?", (r["id"],))
            return None
        seq = self.store.next_counter(f"roomseq:{conv_id}")
        sealed = seal(key, update, _aad(room, note, epoch, self.identity.public_key, seq))
        payload = msgpack.packb([note, epoch, sealed])
        envelope = self.node.router.make(
            EnvelopeType.NOTE,
            now,
            dest_kind=DestKind.ROOM,
            dest=room,
            payload=payload,
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

    def _on_envelope(self, envelope: Envelope) -> None:
        """Apply one NOTE envelope now."""
        self._apply_all([envelope])

    def _queue_envelope(self, envelope: Envelope) -> None:
        """From the node: envelopes arriving together (an inventory answer, a catch-up) are
        applied together, as one merged update per note, once the current burst is read."""
        self._incoming.append(envelope)
        if self._drain_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._drain()
                return
            self._drain_handle = loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_handle = None
        batch, self._incoming = self._incoming, []
        self._apply_all(batch)

    def _apply_all(self, envelopes: list[Envelope]) -> None:
        opened: dict[str, list[_Opened]] = {}
        snapshots: list[_Opened] = []
        seen: set[tuple[str, str, int]] = set()
        for envelope in envelopes:
            try:
                item = self._open_envelope(envelope)
            except (NoteUpdateError, ChatError) as exc:
                self._count("notes_rejected")
                log.info("note update rejected: %s", exc)
                continue
            if item is not None and (item.conv_id, item.author_id, item.seq) not in seen:
                seen.add((item.conv_id, item.author_id, item.seq))
                if item.snapshot is not None:
                    try:
                        item = self._assemble(item)
                    except NoteUpdateError as exc:
                        self._count("notes_rejected")
                        log.info("note snapshot rejected: %s", exc)
                        continue
                    if item is None:
                        continue  # more parts to come
                    snapshots.append(item)
                    continue
                opened.setdefault(item.note_id, []).append(item)
        for item in snapshots:  # applied only when it holds more than we have (with this batch)
            if not self._covers_already(item, seen):
                opened.setdefault(item.note_id, []).append(item)
        for note_id, items in opened.items():
            items.sort(key=lambda i: i.snapshot is None)  # a snapshot first: the rest builds on it
            try:
                self._apply_to_note(note_id, items)
            except NoteUpdateError:
                if len(items) == 1:
                    self._count("notes_rejected")
                    continue
                for item in items:  # one bad update must not sink the others
                    try:
                        self._apply_to_note(note_id, [item])
                    except NoteUpdateError:
                        self._count("notes_rejected")
                    except MeshError as exc:
                        self._count("notes_store_error")
                        log.warning("note update not stored: %s", exc)
            except MeshError as exc:
                self._count("notes_store_error")
                log.warning("note update not stored: %s", exc)

    def _open_envelope(self, envelope: Envelope) -> _Opened | None:
        """Check and open one NOTE envelope; None when it is done already or must wait
        (no key yet, not a member: the room log keeps it)."""
        if envelope.dest_kind != DestKind.ROOM:
            raise NoteUpdateError("a note update must be room-addressed")
        room = envelope.dest
        conv_id = encode_peer_id(room)
        author_id = encode_peer_id(envelope.author)
        if self.store.query(
            "SELECT 1 FROM note_applied WHERE room_id = ? AND author = ? AND seq = ?",
            (conv_id, author_id, envelope.seq),
        ):
            return None
        if self.chat.rooms.conversation(conv_id) is None:
            return None  # not our room: the room log keeps it for others
        state = self.chat.rooms.state(conv_id)
        if self.identity.public_key not in state.members:
            return None
        try:
            fields = msgpack.unpackb(envelope.payload)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise NoteUpdateError("malformed note update") from exc
        if not (isinstance(fields, list) and len(fields) in (3, 4)):
            raise NoteUpdateError("malformed note update")
        note, epoch, sealed = fields[:3]
        if not (
            isinstance(note, bytes)
            and len(note) == 32
            and isinstance(epoch, int)
            and 0 <= epoch < 2**32
            and isinstance(sealed, bytes)
        ):
            raise NoteUpdateError("malformed note update")
        snapshot = None
        if len(fields) == 4:
            try:
                snapshot = SnapshotHeader.decode(fields[3])
            except ValueError as exc:
                raise NoteUpdateError("malformed note snapshot") from exc
        if envelope.author not in state.members and envelope.author not in state.departed:
            raise NoteUpdateError("note update from someone who was never a member")
        note_id = encode_peer_id(note)
        if snapshot is None and envelope.seq <= self._covered_of(note_id).get(author_id, 0):
            # a snapshot we applied holds it already
            self.store.execute(
                "INSERT OR IGNORE INTO note_applied (room_id, author, seq) VALUES (?, ?, ?)",
                (conv_id, author_id, envelope.seq),
            )
            self._count("notes_covered_skipped")
            return None
        key = self.chat.rooms.document_key(conv_id, epoch)
        if key is None:
            self._count("notes_waiting_for_key")
            return None
        aad = _aad(room, note, epoch, envelope.author, envelope.seq, snapshot)
        update = open_sealed(key, sealed, aad)
        return _Opened(conv_id, note_id, author_id, envelope.seq, update, snapshot)

    def _assemble(self, item: _Opened) -> _Opened | None:
        """Collect a snapshot part; the whole snapshot (one update) once every part is here."""
        assert item.snapshot is not None
        base = item.seq - item.snapshot.part
        key = (item.conv_id, item.note_id, item.author_id, base)
        got = self._assembling.setdefault(key, {})
        got[item.snapshot.part] = item
        first = next(iter(got.values())).snapshot
        assert first is not None
        if any(
            p.snapshot is None
            or p.snapshot.parts != first.parts
            or p.snapshot.covers != first.covers
            for p in got.values()
        ):
            del self._assembling[key]
            raise NoteUpdateError("the parts of a snapshot disagree")
        if len(got) < first.parts:
            while len(self._assembling) > MAX_ASSEMBLING:
                del self._assembling[next(iter(self._assembling))]
                self._count("notes_snapshot_dropped")
            return None
        del self._assembling[key]
        ordered = [got[i] for i in range(first.parts)]
        return _Opened(
            item.conv_id,
            item.note_id,
            item.author_id,
            base,
            b"".join(p.update for p in ordered),
            first,
            tuple(p.seq for p in ordered),
        )

    def _apply_to_note(self, note_id: str, items: list[_Opened]) -> None:
        """Apply opened updates of one note, and keep them, in one transaction.

        Each is applied as it came (merging large updates first costs far more
        than applying them one by one: measured 5.2 s against 0.25 s for the
        full automerge-paper history); the batch saves the per-update commits.
        """
        now = self.node.clock()
        with self.store.atomic():
            self.store.execute(
                "INSERT OR IGNORE INTO notes (note_id, room_id, title, created_at, updated_at)"
                " VALUES (?, ?, '', ?, ?)",
                (note_id, items[0].conv_id, now, now),
            )
            document = self._open(note_id)
            for item in items:
                document.apply_update(item.update)
                if item.snapshot is None:  # a whole state depends on nothing outside it
                    self._check_pending(note_id, document, item.update)
                self.store.execute(
                    "INSERT INTO note_updates (note_id, update_blob, unsent) VALUES (?, ?, 0)",
                    (note_id, item.update),
                )
                for seq in item.parts or (item.seq,):
                    self.store.execute(
                        "INSERT OR IGNORE INTO note_applied (room_id, author, seq)"
                        " VALUES (?, ?, ?)",
                        (item.conv_id, item.author_id, seq),
                    )
                if item.snapshot is not None:
                    self._record_covered(note_id, item.snapshot)
                    self._count("notes_snapshots_applied")
            self.store.execute(
                "UPDATE notes SET title = ?, updated_at = ? WHERE note_id = ?",
                (document.title, now, note_id),
            )
        self.counters["notes_applied"] = self.counters.get("notes_applied", 0) + len(items)
        for item in items:
            self._call_hooks(note_id, item.update, None)
        for author_id in dict.fromkeys(item.author_id for item in items):
            self._emit(
                "note", {"note_id": note_id, "room_id": items[0].conv_id, "author": author_id}
            )
        self._maybe_compact(note_id)

    # -- snapshots ---------------------------------------------------------------------

    def _snapshot_authors(self, room: bytes) -> list[bytes]:
        """Whose snapshots of this room's notes we take: its members, past and present
        (asked by the room log's inventory; none when we are not a member)."""
        conv_id = encode_peer_id(room)
        try:
            if self.chat.rooms.conversation(conv_id) is None:
                return []
            state = self.chat.rooms.state(conv_id)
        except MeshError:
            return []
        if self.identity.public_key not in state.members:
            return []
        return sorted({*state.members, *state.departed})

    def _covered_of(self, note_id: str) -> dict[str, int]:
        covered = self._covered.get(note_id)
        if covered is None:
            rows = self.store.query(
                "SELECT author, upto FROM note_covered WHERE note_id = ?", (note_id,)
            )
            covered = self._covered[note_id] = {r["author"]: r["upto"] for r in rows}
        return covered

    def _record_covered(self, note_id: str, snapshot: SnapshotHeader) -> None:
        covered = self._covered_of(note_id)
        for author, upto in snapshot.covers.items():
            author_id = encode_peer_id(author)
            if upto > covered.get(author_id, 0):
                covered[author_id] = upto
                self.store.execute(
                    "INSERT OR REPLACE INTO note_covered (note_id, author, upto) VALUES (?, ?, ?)",
                    (note_id, author_id, upto),
                )

    def _covers(
        self, conv_id: str, note_id: str, also: Collection[tuple[str, str, int]] = ()
    ) -> dict[bytes, int]:
        """{author: n} such that every NOTE envelope of `author` up to n is in this note here:
        applied (any note of the room) or in `also` (room, author, seq), or held by a
        snapshot of this note we applied."""
        covered = self._covered_of(note_id)
        rows = self.store.query(
            "SELECT author, seq FROM note_applied WHERE room_id = ?", (conv_id,)
        )
        seqs = sorted(
            [(r["author"], r["seq"]) for r in rows]
            + [(author, seq) for room, author, seq in also if room == conv_id]
        )
        vector = dict(covered)
        for author, seq in seqs:
            have = vector.get(author, 0)
            if seq == have + 1:
                vector[author] = seq
        return {decode_peer_id(a): n for a, n in vector.items() if n}

    def _covers_already(self, item: _Opened, also: set[tuple[str, str, int]]) -> bool:
        """A whole snapshot that holds nothing new for us (given the updates `also` being
        applied with it): mark its parts, skip the apply."""
        assert item.snapshot is not None
        ours = self._covers(item.conv_id, item.note_id, also)
        if any(n > ours.get(author, 0) for author, n in item.snapshot.covers.items()):
            return False
        with self.store.atomic():
            for seq in item.parts:
                self.store.execute(
                    "INSERT OR IGNORE INTO note_applied (room_id, author, seq) VALUES (?, ?, ?)",
                    (item.conv_id, item.author_id, seq),
                )
        self._count("notes_snapshots_skipped")
        return True

    def _check_pending(self, note_id: str, document: Note, update: bytes) -> None:
        """Remember updates pycrdt holds back (missing dependencies): no snapshot until they
        are integrated, as the document's state would not hold them."""
        try:
            wanted = _state_map(bytes(pycrdt.get_state(update)))
        except BaseException as exc:  # undecodable: apply_update raised already
            reraise_unless_decoding(exc)
            return
        have = _state_map(document.state_vector())
        if any(clock > have.get(client, 0) for client, clock in wanted.items()):
            self._pending.setdefault(note_id, []).append(wanted)

    def _has_pending(self, note_id: str, document: Note) -> bool:
        waiting = self._pending.get(note_id)
        if not waiting:
            return False
        have = _state_map(document.state_vector())
        waiting[:] = [w for w in waiting if any(clock > have.get(c, 0) for c, clock in w.items())]
        return bool(waiting)

    def _snapshot_due(self, note_id: str) -> None:
        """After we sent updates: publish a snapshot once the note is quiet (or large)."""
        sent = self._since_snapshot.get(note_id, 0)
        if sent < SNAPSHOT_AFTER:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: snapshot() is called by hand
        timer = self._snapshot_timers.pop(note_id, None)
        if timer is not None:
            timer.cancel()
        delay = 0.0 if sent >= SNAPSHOT_FORCE else SNAPSHOT_QUIET
        self._snapshot_timers[note_id] = loop.call_later(delay, self._snapshot_later, note_id)

    def _snapshot_later(self, note_id: str) -> None:
        self._snapshot_timers.pop(note_id, None)
        try:
            self.snapshot(note_id)
        except MeshError as exc:
            self._count("notes_snapshot_error")
            log.warning("no snapshot of note %s: %s", note_id, exc)

    def snapshot(self, name: str) -> int:
        """Publish the note's whole state as a snapshot; return its number of parts (0: none).

        None is made while edits of ours are unsent, while pycrdt holds back an
        update (its state would lack it), without the room's current key, or
        for a state over MAX_SNAPSHOT_PARTS parts.
        """
        note_id = self.resolve(name)
        self.flush(note_id)
        rows = self.store.query("SELECT room_id FROM notes WHERE note_id = ?", (note_id,))
        conv_id = str(rows[0]["room_id"])
        state = self.chat.rooms.state(conv_id)
        key = self.chat.rooms.document_key(conv_id, state.epoch)
        document = self._open(note_id)
        unsent = self.store.query(
            "SELECT 1 FROM note_updates WHERE note_id = ? AND unsent = 1 LIMIT 1", (note_id,)
        )
        if key is None or self.identity.public_key not in state.members or unsent:
            self._count("notes_snapshot_postponed")
            return 0
        if self._has_pending(note_id, document):
            self._count("notes_snapshot_postponed")
            return 0
        covers = self._covers(conv_id, note_id)
        whole = document.update_since(None)
        chunks = [whole[i : i + SNAPSHOT_PART] for i in range(0, len(whole), SNAPSHOT_PART)]
        if len(chunks) > MAX_SNAPSHOT_PARTS:
            self._count("notes_snapshot_too_large")
            return 0
        room, note = decode_peer_id(conv_id), decode_peer_id(note_id)
        now = self.node.clock()
        outgoing = []
        with self.store.atomic():
            for part, chunk in enumerate(chunks):
                header = SnapshotHeader(part, len(chunks), covers)
                seq = self.store.next_counter(f"roomseq:{conv_id}")
                aad = _aad(room, note, state.epoch, self.identity.public_key, seq, header)
                payload = msgpack.packb([note, state.epoch, seal(key, chunk, aad), header.encode()])
                outgoing.append(
                    self.node.router.make(
                        EnvelopeType.NOTE,
                        now,
                        dest_kind=DestKind.ROOM,
                        dest=room,
                        payload=payload,
                        seq=seq,
                    )
                )
                self.store.execute(
                    "INSERT OR IGNORE INTO note_applied (room_id, author, seq) VALUES (?, ?, ?)",
                    (conv_id, self.identity.peer_id, seq),
                )
        for envelope in outgoing:
            self.node.send(envelope)
        self._since_snapshot[note_id] = 0
        self._count("notes_snapshots_sent")
        return len(chunks)

    def _replay_room_log(self, room: bytes) -> None:
        """Apply what the room log holds for a room and we have not applied yet."""
        roomlog = self.node.roomlog
        if roomlog is None:
            return
        # past what we applied already: on a member's join (a "room" event) the admin would
        # otherwise open and skip the whole history before its keys go out
        conv_id = encode_peer_id(room)
        applied: dict[str, int] = {}
        for row in self.store.query(
            "SELECT author, seq FROM note_applied WHERE room_id = ? ORDER BY author, seq",
            (conv_id,),
        ):
            if row["seq"] == applied.get(row["author"], 0) + 1:
                applied[row["author"]] = row["seq"]
        vector = {decode_peer_id(a): n for a, n in applied.items()}
        self._apply_all([e for e in roomlog.after(room, vector) if e.type == EnvelopeType.NOTE])

    def _on_chat_event(self, kind: str, data: dict[str, Any]) -> None:
        """Keys or membership changed: held updates may open now, unsent ones may go."""
        if kind in ("dockeys", "room"):
            conv_id = data["room_id"]
            self._replay_room_log(decode_peer_id(conv_id))
            self._send_unsent(conv_id)
            if kind == "dockeys":
                # we may have joined: neighbours' room logs hold what came before
                self.node.request_catch_up()

    # -- compaction ------------------------------------------------------------------

    def _maybe_compact(self, note_id: str) -> None:
        rows = self.store.query(
            "SELECT COUNT(*) AS n, SUM(unsent) AS unsent FROM note_updates WHERE note_id = ?",
            (note_id,),
        )[0]
        if rows["n"] >= COMPACT_AFTER and not rows["unsent"]:
            self.compact(note_id)

    def compact(self, note_id: str) -> None:
        """Replace a note's stored updates with one signed checkpoint of its state."""
        note = self._open(note_id)
        state = note.update_since(None)
        signature = self.identity.sign(note_id.encode() + state)
        with self.store.atomic():
            self.store.execute(
                "INSERT OR REPLACE INTO note_checkpoints (note_id, state, signature)"
                " VALUES (?, ?, ?)",
                (note_id, state, signature),
            )
            self.store.execute(
                "DELETE FROM note_updates WHERE note_id = ? AND unsent = 0", (note_id,)
            )
        self._count("notes_compacted")

    def status(self) -> dict[str, Any]:
        row = self.store.query("SELECT COUNT(*) AS n FROM notes")[0]
        return {"notes": row["n"], "counters": dict(sorted(self.counters.items()))}
