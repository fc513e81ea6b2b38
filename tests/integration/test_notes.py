"""Shared notes between real nodes: traces relayed two hops, partitions, relays, restarts.

The editing traces are Joseph Gentle's editing-traces collection (CC BY 4.0); the
automerge-paper trace is Martin Kleppmann's automerge-perf. See
tests/data/editing-traces/README.md.
"""

from __future__ import annotations

import asyncio

import msgpack
import pytest

import crdt.snapshots as snapshots_module
import mesh.runtime.catchup as catchup_module
from chat.daemon import Daemon
from chat.senderkey import seal
from crdt.payload import SnapshotHeader, aad
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id
from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with
from tests.traces import load_trace


@pytest.mark.parametrize("trace_name", ["automerge-paper", "seph-blog1"])
async def test_a_trace_typed_at_one_peer_arrives_two_hops_away(mesh: Mesh, trace_name: str) -> None:
    trace = load_trace(trace_name)
    await mesh.line("A", "B", "C")  # B relays and is not a member
    room = await room_with(mesh, "A", ["C"])
    notes_a, notes_c = mesh.notes_of("A"), mesh.notes_of("C")
    note_id = notes_a.new(room, trace_name)
    note = notes_a.get(note_id)
    note.insert(0, trace["startContent"])
    for n, txn in enumerate(trace["txns"]):
        note.apply_patches([tuple(p) for p in txn["patches"]])
        if n % 2000 == 0:
            await asyncio.sleep(0)  # let the links carry what was flushed so far
    notes_a.flush(note_id)
    assert note.text == trace["endContent"]
    await wait_until(
        lambda: note_id in notes_c.notes and notes_c.cat(note_id) == trace["endContent"],
        timeout=120,
        what="the final text two hops away",
    )


async def test_three_partitioned_editors_converge_once_reconnected(mesh: Mesh) -> None:
    await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["B", "C"])
    note_id = mesh.notes_of("A").new(room, "plan")
    mesh.notes_of("A").append(note_id, "shared base line.")
    for peer in "BC":
        await wait_until(
            lambda p=peer: (
                note_id in mesh.notes_of(p).notes
                and mesh.notes_of(p).cat(note_id) == "shared base line."
            ),
            what=f"{peer} has the base",
        )
    for peer in "CBA":
        await mesh.stop(peer)

    # each edits alone: adds its line and deletes a different word of the base
    for peer, word in (("A", "shared "), ("B", "base "), ("C", "line")):
        await mesh.start(peer)
        notes = mesh.notes_of(peer)
        note = notes.get(note_id)
        start = note.text.index(word)
        note.delete(start, len(word))
        note.append(f" [{peer} was here, naïvely ✓]")
        notes.flush(note_id)
        await mesh.stop(peer)

    await mesh.line("A", "B", "C")
    texts = lambda: {p: mesh.notes_of(p).cat(note_id) for p in "ABC"}  # noqa: E731
    await wait_until(
        lambda: (
            len(set(texts().values())) == 1 and all(f"[{p} was here" in texts()["A"] for p in "ABC")
        ),
        timeout=30,
        what="all three converge",
    )
    final = texts()["A"]
    for peer in "ABC":
        assert final.count(f" [{peer} was here, naïvely ✓]") == 1
    assert "shared" not in final and "base" not in final and "line." not in final
    assert final.startswith(".")
    docs = {p: mesh.notes_of(p).get(note_id).text.encode() for p in "ABC"}
    assert len(set(docs.values())) == 1  # byte-identical


async def test_a_relay_that_is_not_a_member_keeps_ciphertext_it_cannot_read(mesh: Mesh) -> None:
    _, b, _ = await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["C"])
    marker = "the launch code is 0000-SECRET-MARKER"
    note_id = mesh.notes_of("A").new(room, "secrets")
    mesh.notes_of("A").append(note_id, marker)
    await wait_until(
        lambda: note_id in mesh.notes_of("C").notes and mesh.notes_of("C").cat(note_id) == marker,
        what="C reads it",
    )

    assert b.node.roomlog is not None
    assert len(b.node.roomlog.vector(decode_peer_id(room))) == 1  # one author: A
    assert b.chat.rooms.document_key(room, 0) is None
    assert mesh.notes_of("B").all() == []
    await mesh.stop("B")  # flush B's database to disk, then read every byte of it
    raw = b"".join(p.read_bytes() for p in (mesh.root / "B").glob("meshnotes.db*"))
    assert marker.encode() not in raw and b"SECRET-MARKER" not in raw
    assert b"secrets" not in raw  # the title travels sealed too


async def test_notes_reopen_identical_after_every_peer_restarts(mesh: Mesh) -> None:
    await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["B", "C"])
    note_id = mesh.notes_of("A").new(room, "journal")
    await wait_until(lambda: note_id in mesh.notes_of("B").notes, what="B has the note")
    mesh.notes_of("A").append(note_id, "from A. ")
    mesh.notes_of("B").append(note_id, "from B — ünïcode. ")
    for peer in "ABC":
        await wait_until(
            lambda p=peer: (
                "from A" in mesh.notes_of(p).cat(note_id)
                and "ünïcode" in mesh.notes_of(p).cat(note_id)
            ),
            what=f"{peer} has both edits",
        )
    before = {p: (mesh.notes_of(p).cat(note_id), mesh.notes_of(p).all()) for p in "ABC"}
    for peer in "CBA":
        await mesh.stop(peer)
    await mesh.line("A", "B", "C")
    after = {p: (mesh.notes_of(p).cat(note_id), mesh.notes_of(p).all()) for p in "ABC"}
    assert [a[0] for a in after.values()] == [b[0] for b in before.values()]
    assert [[n["title"] for n in a[1]] for a in after.values()] == [["journal"]] * 3


async def test_compaction_keeps_updates_held_back_until_their_dependency_arrives(
    mesh: Mesh,
) -> None:
    a, _ = await mesh.line("A", "B")
    room = await room_with(mesh, "A", ["B"])
    notes_a = mesh.notes_of("A")
    note_id = notes_a.new(room, "order")
    await wait_until(lambda: note_id in mesh.notes_of("B").notes, what="B has the note")
    await mesh.stop("B")
    notes_a.append(note_id, "first, ")
    notes_a.append(note_id, "then second")  # builds on the first
    notes_a.get(note_id).delete(0, 1)  # deletes an item of the first
    notes_a.flush(note_id)
    assert a.node.roomlog is not None
    envelopes = [
        e for e in a.node.roomlog.after(decode_peer_id(room), {}) if e.type == EnvelopeType.NOTE
    ][-3:]
    first, second, deletion = envelopes

    await mesh.start("B")  # alone: the envelopes arrive by hand, out of order
    notes_b = mesh.notes_of("B")
    notes_b.receive([second, deletion])
    assert notes_b.cat(note_id) == ""  # pycrdt holds both back: their dependency is missing
    notes_b.compact(note_id)
    assert notes_b.counters["notes_compaction_kept"] == 2  # both stay stored
    assert notes_b.snapshot(note_id) == 0  # the state would lack them
    await mesh.stop("B")
    await mesh.start("B")
    notes_b = mesh.notes_of("B")
    notes_b.receive([first])
    assert notes_b.cat(note_id) == notes_a.cat(note_id) == "irst, then second"
    notes_b.compact(note_id)  # all integrated now: nothing is kept
    await mesh.stop("B")
    await mesh.start("B")
    assert mesh.notes_of("B").cat(note_id) == "irst, then second"
    store = mesh["B"].store
    assert store is not None
    assert store.query("SELECT COUNT(*) AS n FROM note_updates")[0]["n"] == 0


async def test_a_member_who_joins_later_catches_up_from_the_room_logs(mesh: Mesh) -> None:
    await mesh.line("A", "B")
    room = await room_with(mesh, "A", ["B"])
    note_id = mesh.notes_of("A").new(room, "history")
    mesh.notes_of("A").append(note_id, "written before carol existed")
    await wait_until(lambda: note_id in mesh.notes_of("B").notes, what="B has the note")
    c = await mesh.start("C", dial="B")  # C's node never saw the note go by
    await wait_until(lambda: len(mesh["A"].node.known_peers()) == 2, what="A hears of C")
    assert c.node.roomlog is not None and c.node.roomlog.rooms() == []
    c.chat.contacts.add(mesh.ids["A"])
    mesh["A"].chat.rooms.invite(room, mesh.ids["C"])
    await wait_until(
        lambda: (
            note_id in mesh.notes_of("C").notes
            and mesh.notes_of("C").cat(note_id) == "written before carol existed"
        ),
        what="C catches up",
    )


async def test_an_edit_that_missed_a_member_whose_link_stayed_up_comes_by_routine_inventory(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    # at 20,000 simulated nodes two members that never left missed a room envelope (every
    # copy near them was out of hops); their links stayed up, so no link-up inventory came
    monkeypatch.setattr(catchup_module, "REFRESH_EVERY", 1.0)
    a, b = await mesh.line("A", "B")
    room = await room_with(mesh, "A", ["B"])
    notes_a, notes_b = mesh.notes_of("A"), mesh.notes_of("B")
    note_id = notes_a.new(room, "missed")
    await wait_until(lambda: note_id in notes_b.notes, what="B has the note")
    routine = b.node.router.counters.get("inventories_routine", 0)
    originate = a.node.router.originate
    lost: list[Envelope] = []

    def lose_notes(envelope: Envelope, now: float) -> list:  # type: ignore[type-arg]
        if envelope.type == EnvelopeType.NOTE:
            lost.append(envelope)  # kept in A's room log (Node.send), sent nowhere
            return []
        return originate(envelope, now)

    monkeypatch.setattr(a.node.router, "originate", lose_notes)
    notes_a.append(note_id, "an edit that went nowhere")
    await wait_until(lambda: lost, what="A's edit made")
    await asyncio.sleep(0.5)
    assert notes_b.cat(note_id) != notes_a.cat(note_id)
    await wait_until(
        lambda: notes_b.cat(note_id) == notes_a.cat(note_id),
        what="B gets the edit from A's log at a routine inventory",
    )
    assert b.node.router.counters["inventories_routine"] > routine


async def test_a_member_who_joins_after_a_snapshot_gets_it_and_the_tail(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots_module, "SNAPSHOT_PART", 200)  # a snapshot of several parts
    a, b, _ = await mesh.line("A", "B", "C")  # B relays and is not a member
    room = await room_with(mesh, "A", ["C"])
    notes_a = mesh.notes_of("A")
    note_id = notes_a.new(room, "history")
    for n in range(30):
        notes_a.append(note_id, f"line {n} of the secret history — SNAPSHOT-MARKER\n")
    parts = notes_a.snapshot(note_id)
    assert parts > 1
    notes_a.append(note_id, "the tail, after the snapshot\n")
    notes_a.append(note_id, "and more tail\n")
    text = notes_a.cat(note_id)
    relay_log = b.node.roomlog
    assert relay_log is not None
    await wait_until(  # the new note (title), 30 lines, the snapshot's parts, the tail
        lambda: relay_log.vector(decode_peer_id(room)) == {a.node.identity.public_key: 33 + parts},
        what="B logs the history, the snapshot and the tail",
    )

    d = await mesh.start("D", dial="B")
    await wait_until(lambda: len(mesh["A"].node.known_peers()) == 3, what="A hears of D")
    d.chat.contacts.add(mesh.ids["A"])
    mesh["A"].chat.rooms.invite(room, mesh.ids["D"])
    notes_d = mesh.notes_of("D")
    await wait_until(
        lambda: note_id in notes_d.notes and notes_d.cat(note_id) == text,
        what="D catches up",
    )
    # D got the snapshot and the two tail updates, not the 31 updates the snapshot covers
    assert notes_d.counters["notes_snapshots_applied"] == 1
    assert notes_d.counters["notes_applied"] == 1 + 2
    assert d.node.roomlog is not None
    assert len(d.node.roomlog.missing(msgpack.packb({decode_peer_id(room): {}}))) == parts + 2
    # D's log lacks what the snapshot covers, so its vector stays at 0; its inventory names
    # what it holds past that, and a neighbour sends none of it again at the next link-up
    assert relay_log.vector(decode_peer_id(room))[a.node.identity.public_key] == 33 + parts
    assert d.node.roomlog.vector(decode_peer_id(room)) == {a.node.identity.public_key: 0}
    assert relay_log.missing(d.node.roomlog.inventory([decode_peer_id(room)])) == []
    # C, a member all along, had everything: it skipped A's snapshot
    assert mesh.notes_of("C").counters["notes_snapshots_skipped"] == 1

    await mesh.stop("B")  # the relay holds the snapshot as ciphertext only
    raw = b"".join(p.read_bytes() for p in (mesh.root / "B").glob("meshnotes.db*"))
    assert b"SNAPSHOT-MARKER" not in raw and b"secret history" not in raw


async def test_a_snapshot_from_a_non_member_or_with_disagreeing_parts_is_refused_and_counted(
    mesh: Mesh,
) -> None:
    a, b = await mesh.line("A", "B")
    room = await room_with(mesh, "A", [])
    notes_a = mesh.notes_of("A")
    note_id = notes_a.new(room, "target")
    notes_a.append(note_id, "kept")
    key = a.chat.rooms.document_key(room, 0)
    assert key is not None
    room_key, note_key = decode_peer_id(room), decode_peer_id(note_id)

    def forged(author: Daemon, seq: int, header: SnapshotHeader, chunk: bytes) -> Envelope:
        data = aad(room_key, note_key, 0, author.node.identity.public_key, seq, header)
        payload = msgpack.packb([note_key, 0, seal(key, chunk, data), header.encode()])
        return author.node.router.make(
            EnvelopeType.NOTE,
            author.node.clock(),
            dest_kind=DestKind.ROOM,
            dest=room_key,
            payload=payload,
            seq=seq,
        )

    everything = {a.node.identity.public_key: 10**6}
    before = notes_a.counters.get("notes_rejected", 0)
    # B never was a member, even with the room's key it cannot write a snapshot
    notes_a.receive([forged(b, 1, SnapshotHeader(0, 1, everything), b"\x00\x00")])
    assert notes_a.counters["notes_rejected"] == before + 1
    # parts that disagree on what they cover are refused (a member's, here)
    notes_a.receive(
        [
            forged(a, 1000, SnapshotHeader(0, 2, everything), b"\x00"),
            forged(a, 1001, SnapshotHeader(1, 2, {}), b"\x00"),
        ]
    )
    assert notes_a.counters["notes_rejected"] == before + 2
    assert notes_a.cat(note_id) == "kept"
    assert notes_a.counters.get("notes_snapshots_applied", 0) == 0
    # a member's snapshot whose signature does not hold never gets past a relay: B drops it,
    # counts it, and neither keeps nor passes it on
    good = forged(a, 2000, SnapshotHeader(0, 1, everything), b"\x00\x00")
    data = bytearray(good.encode())
    data[data.index(good.payload) + 3] ^= 0x01  # inside the payload, under the signature
    relay = b.node
    assert relay.roomlog is not None
    kept = relay.roomlog.vector(room_key)
    dropped = relay.router.counters.get("dropped_bad_signature", 0)
    await wait_until(lambda: relay.router.links, what="B's link to A is up")
    actions = relay.router.receive(next(iter(relay.router.links)), bytes(data), relay.clock())
    assert actions == []
    assert relay.router.counters["dropped_bad_signature"] == dropped + 1
    assert relay.roomlog.vector(room_key) == kept


async def test_a_node_linking_to_two_holders_at_once_gets_the_backlog_once(mesh: Mesh) -> None:
    a, b = await mesh.line("A", "B")
    await wait_until(lambda: a.node.router.links, what="A and B linked")
    room = bytes(range(32))
    for seq in range(1, 6):
        a.node.send(
            a.node.router.make(
                EnvelopeType.NOTE,
                a.node.clock(),
                dest_kind=DestKind.ROOM,
                dest=room,
                payload=b"sealed update",
                seq=seq,
            )
        )
    for daemon in (a, b):
        log = daemon.node.roomlog
        assert log is not None
        await wait_until(
            lambda log=log: log.vector(room) == {a.node.identity.public_key: 5},
            what="both hold the five updates",
        )

    def answered() -> int:
        return sum(d.node.router.counters.get("inventory_answered", 0) for d in (a, b))

    before = answered()
    c = await mesh.start("C")
    c.node.set_room_interests(lambda: [room])
    for holder in ("A", "B"):  # two links at once: the second asks after the first answered
        c.node.connect(PeerAddress.parse(mesh.addresses[holder]))
    await wait_until(lambda: len(c.node.router.links) == 2, what="C links to A and B")
    log_c = c.node.roomlog
    assert log_c is not None
    await wait_until(
        lambda: log_c.vector(room) == {a.node.identity.public_key: 5}, what="C has the backlog"
    )
    # past the pacing wait: the second inventory went out and was answered
    await wait_until(lambda: answered() >= before + 2, what="A and B answer C's inventories")
    sent = [d.node.router.counters.get("roomlog_sent", 0) for d in (a, b)]
    assert sum(sent) == 5, sent
