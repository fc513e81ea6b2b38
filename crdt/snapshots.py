"""Note snapshots: publishing a note's whole state, assembling received ones, what they cover.

A member publishes a note's whole state as NOTE envelopes of its own per-room
sequence, one per part, whose payload names what the state covers (see
crdt/payload.py). Relays keep them in the room log as ciphertext, and a
member's inventory is answered with the newest snapshot plus the tail (see
mesh/storage/covering.py). Here: when to publish one (and when not: unsent edits of
ours, updates pycrdt holds back), putting received parts together, skipping a
snapshot that holds nothing new, and remembering what applied ones cover.
"""

from __future__ import annotations

from collections.abc import Collection

from crdt.documents import Documents
from crdt.errors import NoteUpdateError
from crdt.payload import MAX_SNAPSHOT_PARTS, Opened, SnapshotHeader, seal_payload
from mesh.errors import MeshError
from mesh.wire.envelope import DestKind, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

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

    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.store = documents.store
        self.chat = documents.chat
        self.node = documents.node
        self.identity = documents.identity
        self._since: dict[str, int] = {}  # bytes we sent since our last snapshot
        self._due: dict[str, float] = {}  # note -> when to publish its snapshot
        # (room, note, author, first seq) -> {part: opened part}
        self._assembling: dict[tuple[str, str, str, int], dict[int, Opened]] = {}
        self._covered: dict[str, dict[str, int]] = {}  # note -> {author: upto}, from snapshots

    def _count(self, name: str) -> None:
        self.documents.count(name)

    def stop(self) -> None:
        self._due.clear()

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

    # -- publishing ------------------------------------------------------------------------

    def sent(self, note_id: str, size: int) -> None:
        """We sent `size` bytes of updates of a note."""
        self._since[note_id] = self._since.get(note_id, 0) + size

    def due(self, note_id: str, now: float) -> float | None:
        """After we sent updates: when to publish a snapshot, once the note is quiet for
        SNAPSHOT_QUIET seconds (at once when large); None while none is due."""
        sent = self._since.get(note_id, 0)
        if sent < SNAPSHOT_AFTER:
            return None
        delay = 0.0 if sent >= SNAPSHOT_FORCE else SNAPSHOT_QUIET
        self._due[note_id] = now + delay
        return self._due[note_id]

    def next_deadline(self) -> float | None:
        """When the next snapshot is due (None: none is)."""
        return min(self._due.values(), default=None)

    def take_due(self, now: float) -> list[str]:
        """The notes whose snapshot is due by `now` (no longer due after this)."""
        due = [note_id for note_id, at in self._due.items() if at <= now]
        for note_id in due:
            del self._due[note_id]
        return due

    def publish(self, note_id: str) -> int:
        """Publish the note's whole state as a snapshot; return its number of parts (0: none).

        The caller flushes the note's edits first. None is made while edits of ours
        are unsent, while an update applied is not integrated yet (its state would
        lack it: see crdt/holding.py), without the room's current key, or for a
        state over MAX_SNAPSHOT_PARTS parts.
        """
        rows = self.store.query("SELECT room_id FROM notes WHERE note_id = ?", (note_id,))
        conv_id = str(rows[0]["room_id"])
        state = self.chat.rooms.state(conv_id)
        key = self.chat.rooms.document_key(conv_id, state.epoch)
        document = self.documents.open(note_id)
        unsent = self.store.query(
            "SELECT 1 FROM note_updates WHERE note_id = ? AND unsent = 1 LIMIT 1", (note_id,)
        )
        if key is None or self.identity.public_key not in state.members or unsent:
            self._count("notes_snapshot_postponed")
            return 0
        if self.documents.has_pending(note_id):
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
