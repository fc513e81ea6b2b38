"""Notes: the work they say is due (edits coalesced, then sent), stepped without an event loop."""

from __future__ import annotations

from chat.messages import Chat
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
    assert notes.next_deadline() is None

    notes.get(note_id).append("one, ")
    notes.get(note_id).append("two")
    assert woken == [clock.now]  # told once, for the first edit
    assert notes.next_deadline() == clock.now + COALESCE_WINDOW
    notes.run_due(clock.now)
    assert sent == []  # the window is still open

    clock.now += COALESCE_WINDOW
    notes.run_due(clock.now)
    assert [e.type for e in sent] == [EnvelopeType.NOTE]
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
    assert notes.next_deadline() is None and sent == []
    notes.flush(note_id)
    assert [e.type for e in sent] == [EnvelopeType.NOTE]
