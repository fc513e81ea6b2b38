"""Shared notes between real nodes: traces relayed two hops, partitions, relays, restarts.

The editing traces are Joseph Gentle's editing-traces collection (CC BY 4.0); the
automerge-paper trace is Martin Kleppmann's automerge-perf. See
tests/data/editing-traces/README.md.
"""

from __future__ import annotations

import asyncio

import pytest

from mesh.identity import decode_peer_id
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
