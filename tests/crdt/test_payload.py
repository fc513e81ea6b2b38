"""The NOTE payload: snapshot headers, and what the room log reads of a payload."""

from __future__ import annotations

import msgpack
import pytest

from crdt.payload import NoteReader, SnapshotHeader, note_header
from mesh.wire.envelope import EnvelopeType
from mesh.wire.identity import Identity

ALICE = Identity.from_seed(b"a" * 32)
NOTE_ID = b"n" * 32


def test_snapshot_headers_are_checked_strictly() -> None:
    good = SnapshotHeader(1, 2, {ALICE.public_key: 3})
    assert SnapshotHeader.decode(good.encode()) == good
    for bad in ([2, 2, {}], [0, 0, {}], [0, 65, {}], [0, 1, {b"short": 1}], [0, 1], "x"):
        with pytest.raises(ValueError):
            SnapshotHeader.decode(bad)
    assert note_header(msgpack.packb([NOTE_ID, 0, b"x"])) == (NOTE_ID, None)
    with pytest.raises(ValueError):
        note_header(b"\xc1")


def test_the_room_log_reads_the_note_and_header_in_clear_and_asks_whose_snapshots() -> None:
    header = SnapshotHeader(0, 1, {ALICE.public_key: 7})
    reader = NoteReader(lambda room: [ALICE.public_key] if room == b"r" * 32 else [])
    assert reader.envelope_type == EnvelopeType.NOTE
    assert reader.read(msgpack.packb([NOTE_ID, 0, b"sealed", header.encode()])) == (
        NOTE_ID,
        header,
    )
    assert reader.authors(b"r" * 32) == [ALICE.public_key]
    assert reader.authors(b"s" * 32) == []
    assert NoteReader().authors(b"r" * 32) == []  # a relay takes nobody's snapshots
