"""Note snapshots: publishing a note's whole state, assembling received ones, what they cover.

A member publishes a note's whole state as NOTE envelopes of its own per-room
sequence, one per part, whose payload names what the state covers (see
crdt/payload.py). Relays keep them in the room log as ciphertext, and a
member's inventory is answered with the newest snapshot plus the tail (see
mesh/storage/roomlog.py). Here: when to publish one (and when not: unsent edits of
ours, updates pycrdt holds back), putting received parts together, skipping a
snapshot that holds nothing new, and remembering what applied ones cover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

from crdt.errors import NoteUpdateError
from crdt.note import Note
from crdt.payload import Opened, seal_payload
from crdt.updates import inserts_held_back, integrate_stuck
from mesh.errors import MeshError
from mesh.storage.roomlog import MAX_SNAPSHOT_PARTS, SnapshotHeader
from mesh.wire.envelope import DestKind, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

if TYPE_CHECKING:
    from crdt.notes import Notes

log = logging.getLogger("meshnotes.notes")

#: a member publishes a snapshot of a note once it sent this many bytes of its updates since
#: the last one and the note was quiet for SNAPSHOT_QUIET seconds (or at once past SNAPSHOT_FORCE)
SNAPSHOT_AFTER = 64 * 1024
SNAPSHOT_QUIET = 0.5
SNAPSHOT_FORCE = 1024 * 1024
#: plaintext bytes of state per snapshot envelope
SNAPSHOT_PART = 96 * 1024
#: snapshots being put together from their parts at most (the oldest is dropped)
MAX_ASSEMBLING = 32


class Snapshots:
    """The snapshots of one peer's notes (a part of :class:`crdt.notes.Notes`)."""

    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.store = notes.store
        self.chat = notes.chat
        self.node = notes.node
        self.identity = notes.identity
        self._since: dict[str, int] = {}  # bytes we sent since our last snapshot
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # (room, note, author, first seq) -> {part: opened part}
        self._assembling: dict[tuple[str, str, str, int], dict[int, Opened]] = {}
        # per note, applied updates pycrdt holds back (dependencies missing): pending
        self._pending: dict[str, list[bytes]] = {}
        self._covered: dict[str, dict[str, int]] = {}  # note -> {author: upto}, from snapshots

    def _count(self, name: str) -> None:
        self.notes.counters[name] = self.notes.counters.get(name, 0) + 1

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    # -- who, and what they cover --------------------------------------------------------

    def authors(self, room: bytes) -> list[bytes]:
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

    def covered_of(self, note_id: str) -> dict[str, int]:
        """{author id: n}: the envelopes up to n a snapshot of this note we applied holds."""
        covered = self._covered.get(note_id)
        if covered is None:
            rows = self.store.query(
                "SELECT author, upto FROM note_covered WHERE note_id = ?", (note_id,)
            )
            covered = self._covered[note_id] = {r["author"]: r["upto"] for r in rows}
        return covered

    def record_covered(self, note_id: str, snapshot: SnapshotHeader) -> None:
        """Remember what an applied snapshot covers (inside the caller's transaction)."""
        covered = self.covered_of(note_id)
        for author, upto in snapshot.covers.items():
            author_id = encode_peer_id(author)
            if upto > covered.get(author_id, 0):
                covered[author_id] = upto
                self.store.execute(
                    "INSERT OR REPLACE INTO note_covered (note_id, author, upto) VALUES (?, ?, ?)",
                    (note_id, author_id, upto),
                )

    def covers(
        self, conv_id: str, note_id: str, also: Collection[tuple[str, str, int]] = ()
    ) -> dict[bytes, int]:
        """{author: n} such that every NOTE envelope of `author` up to n is in this note here:
        applied (any note of the room) or in `also` (room, author, seq), or held by a
        snapshot of this note we applied."""
        covered = self.covered_of(note_id)
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

    # -- receiving -------------------------------------------------------------------------

    def assemble(self, item: Opened) -> Opened | None:
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
        return Opened(
            item.conv_id,
            item.note_id,
            item.author_id,
            base,
            b"".join(p.update for p in ordered),
            first,
            tuple(p.seq for p in ordered),
        )

    def covers_already(self, item: Opened, also: set[tuple[str, str, int]]) -> bool:
        """A whole snapshot that holds nothing new for us (given the updates `also` being
        applied with it): mark its parts, skip the apply."""
        assert item.snapshot is not None
        ours = self.covers(item.conv_id, item.note_id, also)
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
        waiting = self._pending.get(note_id)
        if not waiting:
            return False
        have = document.state_vector()
        waiting[:] = [u for u in waiting if inserts_held_back(u, have)]
        return bool(waiting)

    # -- publishing ------------------------------------------------------------------------

    def sent(self, note_id: str, size: int) -> None:
        """We sent `size` bytes of updates of a note."""
        self._since[note_id] = self._since.get(note_id, 0) + size

    def due(self, note_id: str) -> None:
        """After we sent updates: publish a snapshot once the note is quiet (or large)."""
        sent = self._since.get(note_id, 0)
        if sent < SNAPSHOT_AFTER:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: Notes.snapshot() is called by hand
        timer = self._timers.pop(note_id, None)
        if timer is not None:
            timer.cancel()
        delay = 0.0 if sent >= SNAPSHOT_FORCE else SNAPSHOT_QUIET
        self._timers[note_id] = loop.call_later(delay, self._later, note_id)

    def _later(self, note_id: str) -> None:
        self._timers.pop(note_id, None)
        try:
            self.publish(note_id)
        except MeshError as exc:
            self._count("notes_snapshot_error")
            log.warning("no snapshot of note %s: %s", note_id, exc)

    def publish(self, note_id: str) -> int:
        """Publish the note's whole state as a snapshot; return its number of parts (0: none).

        None is made while edits of ours are unsent, while pycrdt holds back an
        update's inserts (its state would lack them), without the room's current key, or
        for a state over MAX_SNAPSHOT_PARTS parts.
        """
        self.notes.flush(note_id)
        rows = self.store.query("SELECT room_id FROM notes WHERE note_id = ?", (note_id,))
        conv_id = str(rows[0]["room_id"])
        state = self.chat.rooms.state(conv_id)
        key = self.chat.rooms.document_key(conv_id, state.epoch)
        document = self.notes._open(note_id)
        unsent = self.store.query(
            "SELECT 1 FROM note_updates WHERE note_id = ? AND unsent = 1 LIMIT 1", (note_id,)
        )
        if key is None or self.identity.public_key not in state.members or unsent:
            self._count("notes_snapshot_postponed")
            return 0
        if self.has_pending(note_id, document):
            self._count("notes_snapshot_postponed")
            return 0
        covers = self.covers(conv_id, note_id)
        whole = document.update_since(None)
        chunks = [whole[i : i + SNAPSHOT_PART] for i in range(0, len(whole), SNAPSHOT_PART)]
        if len(chunks) > MAX_SNAPSHOT_PARTS:
            self._count("notes_snapshot_too_large")
            return 0
        room, note = decode_peer_id(conv_id), decode_peer_id(note_id)
        author = self.identity.public_key
        now = self.node.clock()
        outgoing = []
        with self.store.atomic():
            for part, chunk in enumerate(chunks):
                header = SnapshotHeader(part, len(chunks), covers)
                seq = self.store.next_counter(f"roomseq:{conv_id}")
                payload = seal_payload(key, room, note, state.epoch, author, seq, chunk, header)
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
        self._since[note_id] = 0
        self._count("notes_snapshots_sent")
        return len(chunks)
