"""Notes: the work they say is due (edits coalesced, then sent), stepped without an event loop."""

from __future__ import annotations

from chat.messages import Chat
from crdt import versions
from crdt.notes import COALESCE_WINDOW, Notes
from mesh.runtime.node import Node
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import Identity


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_edits_are_due_when_the_coalescing_window_closes_and_go_as_one_update() -> None:
    clock = Clock()
    node = Node(Identity.from_seed(b"a" * 32, "alice"), clock=clock)
    sent: list[Envelope] = []
    node.send = sent.append  # type: ignore[method-assign]
    chat = Chat(node, Store(None))
    woken: list[float] = []
    notes = Notes(chat, chat.store, wake=lambda: woken.append(clock.now))
    note_id = notes.new(chat.rooms.new("plans"), "plan")
    sent.clear()
    woken.clear()
    # the new note's burst (its title) is a version once it is quiet: nothing else is due
    assert notes.next_deadline() == clock.now + versions.QUIET

    notes.get(note_id).append("one, ")
    notes.get(note_id).append("two")
    assert woken == [clock.now]  # told once, for the first edit
    assert notes.next_deadline() == clock.now + COALESCE_WINDOW
    notes.run_due(clock.now)
    assert sent == []  # the window is still open

    clock.now += COALESCE_WINDOW
    notes.run_due(clock.now)
    assert [e.type for e in sent] == [EnvelopeType.NOTE]
    assert notes.next_deadline() == clock.now + versions.QUIET  # only the version is due
    clock.now += versions.QUIET
    notes.run_due(clock.now)
    assert [v["chars"] for v in notes.versions.all(note_id)] == [len("one, two")]
    assert notes.next_deadline() is None


def test_without_a_wake_edits_wait_for_flush_and_nothing_is_due() -> None:
    node = Node(Identity.from_seed(b"b" * 32, "bob"))
    sent: list[Envelope] = []
    node.send = sent.append  # type: ignore[method-assign]
    chat = Chat(node, Store(None))
    notes = Notes(chat, chat.store)
    note_id = notes.new(chat.rooms.new("plans"), "plan")
    sent.clear()
    notes.get(note_id).append("text")
    due = notes.next_deadline()  # no send is due: only the version, a burst's QUIET away
    assert sent == [] and due is not None and due - node.clock() > COALESCE_WINDOW
    notes.flush(note_id)
    assert [e.type for e in sent] == [EnvelopeType.NOTE]
    notes.stop()  # the burst not ended yet is kept as a version
    assert [v["chars"] for v in notes.versions.all(note_id)] == [len("text")]
