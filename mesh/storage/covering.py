"""Snapshots as the room log sees them: envelopes that stand for others, in a format it cannot read.

A layer above (the notes) may publish a document's whole state as a snapshot:
room envelopes of the author's own sequence, one per part, each naming in
clear the per-author vector of that document's envelopes the state includes.
The room log knows no payload format: the layer that owns the payloads gives
it a :class:`SnapshotReader` (crdt/payload.py's, registered when the notes
start). A node that asks in its inventory for snapshots by some authors gets,
per document, the most covering complete snapshot by one of them and the
envelopes of that document it does not cover. A log without a reader (a node
that runs no notes) answers every inventory with everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from mesh.wire.identity import decode_peer_id


class SnapshotPart(Protocol):
    """What the clear part of a snapshot envelope says: which part, of how many, covering what."""

    @property
    def part(self) -> int: ...

    @property
    def parts(self) -> int: ...

    @property
    def covers(self) -> Mapping[bytes, int]: ...


class SnapshotReader(Protocol):
    """What the layer that owns room envelopes' payloads tells the room log about them."""

    @property
    def envelope_type(self) -> int:
        """The type of the room envelopes it reads (others are not looked at)."""
        ...

    def read(self, payload: bytes) -> tuple[bytes, SnapshotPart | None]:
        """(the document the payload changes, the snapshot part it is or None);
        ValueError when malformed."""
        ...

    def authors(self, room: bytes) -> list[bytes]:
        """Whose snapshots of the room's documents this node takes (none: not a member)."""
        ...


class Coverage:
    """The envelopes of one room that the best snapshot of their document covers.

    Feed it every envelope the reader read (:meth:`add`), then ask :meth:`covered`.
    Per document, the best snapshot is the complete one (every part here) by a
    trusted author that covers most; its own parts are not covered.
    """

    def __init__(self, trusted: set[str]) -> None:
        self.trusted = trusted
        self._documents: list[tuple[str, int, bytes]] = []
        self._parts: dict[tuple[bytes, str, int], dict[int, SnapshotPart]] = {}

    def add(self, author: str, seq: int, document: bytes, snap: SnapshotPart | None) -> None:
        self._documents.append((author, seq, document))
        if snap is not None and author in self.trusted:
            self._parts.setdefault((document, author, seq - snap.part), {})[snap.part] = snap

    def covered(self) -> set[tuple[str, int]]:
        """The (author, seq) the best snapshots cover."""
        # document -> (score, author, base, parts, covers)
        best: dict[bytes, tuple[int, str, int, int, Mapping[bytes, int]]] = {}
        for (document, author, base), got in self._parts.items():
            headers = list(got.values())
            first = headers[0]
            if len(got) != first.parts or any(
                h.parts != first.parts or h.covers != first.covers for h in headers
            ):
                continue  # incomplete or inconsistent: not usable
            score = sum(first.covers.values())
            if document not in best or score > best[document][0]:
                best[document] = (score, author, base, first.parts, first.covers)
        skip: set[tuple[str, int]] = set()
        for author, seq, document in self._documents:
            if document not in best:
                continue
            _, by, base, count, covers = best[document]
            own_part = author == by and base <= seq < base + count
            if not own_part and seq <= covers.get(decode_peer_id(author), 0):
                skip.add((author, seq))
        return skip
