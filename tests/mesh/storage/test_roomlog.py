"""RoomLog: what a node keeps of room envelopes, its vectors, quotas and inventory answers."""

from __future__ import annotations

import msgpack

from crdt.payload import NoteReader, SnapshotHeader
from mesh.storage.inventory import HELD, MAX_HELD_RANGES, MAX_INVENTORY_AUTHORS, SNAPSHOT_AUTHORS
from mesh.storage.roomlog import RoomLog, RoomLogLimits
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity

ALICE = Identity.from_seed(b"a" * 32)
ROOMS = [bytes([i]) * 32 for i in range(1, 5)]


def note(seq: int, room: bytes = ROOMS[0], size: int = 10) -> Envelope:
    return Envelope.create(
        ALICE,
        EnvelopeType.NOTE,
        dest_kind=DestKind.ROOM,
        dest=room,
        timestamp_ms=1000 + seq,
        seq=seq,
        payload=bytes(size),
    )


def stored(log: RoomLog, room: bytes) -> list[int]:
    return [e.seq for e in log.missing(msgpack.packb({room: {}}))]


def test_an_envelope_is_kept_once_and_summed_up_as_a_vector() -> None:
    log = RoomLog(Store(None))
    assert log.keep(note(1), now=1.0) and log.keep(note(2), now=2.0) and log.keep(note(4), 3.0)
    assert not log.keep(note(2), now=4.0)
    assert log.vector(ROOMS[0]) == {ALICE.public_key: 2}
    assert stored(log, ROOMS[0]) == [1, 2, 4]
    assert log.status()["size"] == 3


def test_a_room_over_its_entry_quota_loses_its_oldest_entries() -> None:
    log = RoomLog(Store(None), RoomLogLimits(per_room_items=5))
    for seq in range(1, 13):
        log.keep(note(seq), now=float(seq))
        assert log.status()["size"] <= 5
    assert stored(log, ROOMS[0]) == [8, 9, 10, 11, 12]
    assert log.counters["roomlog_evicted"] == 7


def test_a_room_over_its_byte_quota_loses_its_oldest_entries() -> None:
    log = RoomLog(Store(None), RoomLogLimits(per_room_bytes=4000))
    for seq in range(1, 21):
        log.keep(note(seq, size=500), now=float(seq))
    assert log.status()["bytes"] <= 4000
    assert stored(log, ROOMS[0])[-1] == 20


def test_past_the_room_quota_the_least_recent_room_goes() -> None:
    store = Store(None)
    log = RoomLog(store, RoomLogLimits(max_rooms=2))
    log.keep(note(1, ROOMS[0]), now=1.0)
    log.keep(note(1, ROOMS[1]), now=2.0)
    log.keep(note(2, ROOMS[0]), now=3.0)  # room 0 is the more recent now
    log.keep(note(1, ROOMS[2]), now=4.0)
    assert sorted(log.rooms()) == sorted([ROOMS[0], ROOMS[2]])
    assert log.counters["roomlog_rooms_evicted"] == 1
    # totals kept in memory stay right across evictions and a new RoomLog on the same store
    log.keep(note(2, ROOMS[2]), now=5.0)
    assert log.status()["size"] == 4
    again = RoomLog(store, RoomLogLimits(max_rooms=2))
    again.keep(note(1, ROOMS[3]), now=6.0)
    assert len(again.rooms()) == 2 and ROOMS[3] in again.rooms()


MALLORY = Identity.from_seed(b"m" * 32)
NOTE_ID = b"n" * 32


def note_update(author: Identity, seq: int, snapshot: SnapshotHeader | None = None) -> Envelope:
    fields: list[object] = [NOTE_ID, 0, b"sealed"]
    if snapshot is not None:
        fields.append(snapshot.encode())
    return Envelope.create(
        author,
        EnvelopeType.NOTE,
        dest_kind=DestKind.ROOM,
        dest=ROOMS[0],
        timestamp_ms=1000 + seq,
        seq=seq,
        payload=msgpack.packb(fields),
    )


def answer(log: RoomLog, have: dict[bytes, object]) -> list[tuple[bytes, int]]:
    return [(e.author, e.seq) for e in log.missing(msgpack.packb({ROOMS[0]: have}))]


def test_an_asker_that_takes_snapshots_gets_the_snapshot_and_the_tail_only() -> None:
    log = RoomLog(Store(None), snapshots=NoteReader())
    covers = {ALICE.public_key: 5}
    for seq in range(1, 6):
        log.keep(note_update(ALICE, seq), now=float(seq))
    for part in range(2):
        log.keep(note_update(ALICE, 6 + part, SnapshotHeader(part, 2, covers)), now=6.0 + part)
    log.keep(note_update(ALICE, 8), now=8.0)
    alice = ALICE.public_key
    everything = [(alice, seq) for seq in range(1, 9)]
    assert answer(log, {}) == everything  # a relay's inventory: the whole history
    assert answer(log, {SNAPSHOT_AUTHORS: [alice]}) == [(alice, 6), (alice, 7), (alice, 8)]
    assert answer(log, {SNAPSHOT_AUTHORS: [MALLORY.public_key]}) == everything  # not trusted
    assert answer(log, {alice: 6, SNAPSHOT_AUTHORS: [alice]}) == [(alice, 7), (alice, 8)]


def test_a_snapshot_by_an_author_the_asker_does_not_name_or_incomplete_covers_nothing() -> None:
    log = RoomLog(Store(None), snapshots=NoteReader())
    for seq in range(1, 4):
        log.keep(note_update(ALICE, seq), now=float(seq))
    lie = {ALICE.public_key: 10**6}
    log.keep(note_update(MALLORY, 1, SnapshotHeader(0, 1, lie)), now=4.0)  # complete
    log.keep(note_update(ALICE, 4, SnapshotHeader(0, 2, lie)), now=5.0)  # one part of two
    trusted = {SNAPSHOT_AUTHORS: [ALICE.public_key]}
    assert len(answer(log, trusted)) == 5  # nothing skipped
    assert answer(log, {SNAPSHOT_AUTHORS: [MALLORY.public_key]}) == [(MALLORY.public_key, 1)]


def test_an_inventory_names_the_snapshot_authors_and_stays_within_its_author_bound() -> None:
    store = Store(None)
    log = RoomLog(store, snapshots=NoteReader(lambda room: [ALICE.public_key]))
    authors = [Identity.from_seed(bytes([i]) * 32) for i in range(70)]
    for author in authors:
        log.keep(note_update(author, 1), now=1.0)
    body = msgpack.unpackb(log.inventory([ROOMS[0]]), strict_map_key=False)
    assert body[ROOMS[0]][SNAPSHOT_AUTHORS] == [ALICE.public_key]
    assert len(body[ROOMS[0]]) == MAX_INVENTORY_AUTHORS
    log = RoomLog(store)  # without a snapshot reader (a node that runs no notes)
    assert SNAPSHOT_AUTHORS not in msgpack.unpackb(log.inventory(), strict_map_key=False)[ROOMS[0]]


def test_what_an_asker_holds_past_a_gap_in_its_vector_is_not_sent_again() -> None:
    full, member = RoomLog(Store(None)), RoomLog(Store(None))
    for seq in range(1, 11):
        full.keep(note(seq), now=float(seq))
        if seq not in (2, 3, 7):  # a member lacks what a snapshot it applied covers
            member.keep(note(seq), now=float(seq))
    entry = msgpack.unpackb(member.inventory(), strict_map_key=False)[ROOMS[0]]
    assert entry[ALICE.public_key] == 1
    assert entry[HELD] == {ALICE.public_key: [4, 6, 8, 10]}
    assert [e.seq for e in full.missing(member.inventory())] == [2, 3, 7]
    # an inventory without held runs (an older node's) gets everything past its vector
    del entry[HELD]
    assert len(full.missing(msgpack.packb({ROOMS[0]: entry}))) == 9
    # malformed held runs are ignored, not trusted
    for bad in ([4, "x"], list(range(2 * MAX_HELD_RANGES + 2)), "x"):
        entry[HELD] = {ALICE.public_key: bad}
        assert len(full.missing(msgpack.packb({ROOMS[0]: entry}))) == 9


def test_an_inventory_names_the_longest_held_runs_only() -> None:
    log = RoomLog(Store(None))
    for seq in range(2, 2 + 3 * (MAX_HELD_RANGES + 4), 3):  # runs of 2, gaps of 1
        log.keep(note(seq), now=float(seq))
        log.keep(note(seq + 1), now=float(seq))
    log.keep(note(1000), now=1000.0)  # a run of 3 at the end
    log.keep(note(1001), now=1000.0)
    log.keep(note(1002), now=1000.0)
    runs = msgpack.unpackb(log.inventory(), strict_map_key=False)[ROOMS[0]][HELD]
    named = runs[ALICE.public_key]
    assert len(named) == 2 * MAX_HELD_RANGES
    assert named[-2:] == [1000, 1002]


def test_after_returns_what_lies_past_a_vector_of_any_length() -> None:
    log = RoomLog(Store(None))
    authors = [Identity.from_seed(bytes([i]) * 32) for i in range(70)]
    for author in authors:
        for seq in (1, 2, 3):
            log.keep(note_update(author, seq), now=float(seq))
    past = log.after(ROOMS[0], {a.public_key: 2 for a in authors})
    assert sorted((e.author, e.seq) for e in past) == sorted((a.public_key, 3) for a in authors)
    assert len(log.after(ROOMS[0], {})) == 210
