"""Deleting a note: a signed tombstone every member honours; undone only by its deleter or the
admin, within the grace period. A (admin) - B (relay) - C, all three members."""

from __future__ import annotations

import base64
import json
import time

import pycrdt
import pytest

from crdt import tombstones
from crdt.errors import NoteUsageError
from tests.integration.harness import Mesh, room_with
from tests.waiting import wait_until


def listed(mesh: Mesh, name: str) -> list[str]:
    return [n["note_id"] for n in mesh.notes_of(name).all()]


async def test_a_delete_reaches_every_member_offline_ones_too_and_only_its_rules_undo_it(
    mesh: Mesh,
) -> None:
    await mesh.line("A", "B", "C")
    mesh["B"].chat.contacts.add(mesh.ids["A"])
    room = await room_with(mesh, "A", ["B", "C"])
    a, b, c = (mesh.notes_of(n) for n in "ABC")
    note_id = a.new(room, "plan")
    a.append(note_id, "- ship it\n")
    for name in "BC":
        await wait_until(lambda n=name: note_id in listed(mesh, n), what=f"{name} has the note")

    await mesh.stop("C")  # C is away while B deletes the note
    b.delete(note_id)
    assert listed(mesh, "B") == [] and [n["deleted"] for n in b.all(deleted=True)] == [True]
    await wait_until(lambda: listed(mesh, "A") == [], what="A honours B's delete")
    with pytest.raises(NoteUsageError, match="deleted already"):
        a.delete(note_id)
    await mesh.start("C", dial="B")
    c = mesh.notes_of("C")
    await wait_until(
        lambda: [n["deleted"] for n in c.all(deleted=True)] == [True], what="C catches up"
    )
    assert listed(mesh, "C") == []
    assert c.deleted(note_id) == {"by": mesh.ids["B"], "at": b.deleted(note_id)["at"]}  # type: ignore[index]

    # C is neither the deleter nor the admin: refused here, and ignored everywhere if forced
    with pytest.raises(NoteUsageError, match="only the member who deleted it"):
        c.undelete(note_id)
    c._tombstone(note_id, "undelete")  # as a modified client would
    await wait_until(
        lambda: len(tombstones.statements(a.get(note_id))) == 2, what="A has C's statement"
    )
    assert listed(mesh, "A") == [] and listed(mesh, "C") == []

    # the admin may undo it; the note comes back whole, for everyone
    a.undelete(note_id)
    for name in "ABC":
        await wait_until(lambda n=name: listed(mesh, n) == [note_id], what=f"{name} sees it back")
    assert c.cat(note_id) == "- ship it\n"


async def test_forged_and_late_statements_do_not_count(mesh: Mesh) -> None:
    await mesh.start("A")
    notes = mesh.notes_of("A")
    room = mesh["A"].chat.rooms.new("team")
    note_id = notes.new(room, "plan")
    note = notes.get(note_id)
    array = note.doc.get(tombstones.ROOT, type=pycrdt.Array)
    # a delete signed by nobody in the room, one with a bad signature, and a malformed one
    outsider = mesh["A"].identity.__class__.generate("outsider")
    tombstones.add(note, outsider, note_id, "delete", time.time())
    forged = {
        "op": "delete",
        "by": mesh.ids["A"],
        "at": time.time(),
        "sig": base64.b64encode(b"x" * 64).decode(),
    }
    array.append(json.dumps(forged))
    array.append("not json")
    for at in ("10" + "0" * 400, "NaN", "Infinity"):  # json reads each; none is a time
        by, sig = mesh.ids["A"], base64.b64encode(b"x" * 64).decode()
        array.append(f'{{"op": "delete", "by": "{by}", "at": {at}, "sig": "{sig}"}}')
    assert notes.deleted(note_id) is None and listed(mesh, "A") == [note_id]
    # the admin's own delete counts; an undelete past the grace period does not
    long_ago = time.time() - tombstones.GRACE - 60
    tombstones.add(note, mesh["A"].identity, note_id, "delete", long_ago)
    assert notes.deleted(note_id) == {"by": mesh.ids["A"], "at": long_ago}
    with pytest.raises(NoteUsageError, match="final"):
        notes.undelete(note_id)
    tombstones.add(note, mesh["A"].identity, note_id, "undelete", time.time())
    assert notes.deleted(note_id) is not None
