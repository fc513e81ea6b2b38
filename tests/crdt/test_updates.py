"""Update bytes: merging, and telling whether a document holds an update back."""

from __future__ import annotations

import pycrdt

from crdt.note import Note
from crdt.updates import (
    held_back,
    held_back_among,
    inserts_held_back,
    integrate_stuck,
    merge_many,
    state_map,
    waits_on_another_client,
)


def _history() -> list[bytes]:
    """Three inserts, then a deletion of part of the first, each as its own diff."""
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    text = doc.get("body", type=pycrdt.Text)
    updates, state = [], doc.get_state()
    for word in ("one ", "two ", "three"):
        text.insert(len(text), word)
        updates.append(doc.get_update(state))
        state = doc.get_state()
    del text[0:2]
    updates.append(doc.get_update(state))
    return updates


def test_an_update_is_held_back_until_what_it_builds_on_is_integrated() -> None:
    first, second, third, deletion = _history()
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    text = doc.get("body", type=pycrdt.Text)
    doc.apply_update(second)
    doc.apply_update(deletion)
    assert str(text) == ""
    state = doc.get_state()
    # the insert past a gap and the deletion of an item not here yet are both held back
    assert [held_back(u, state) for u in (first, second, third, deletion)] == [True] * 4
    doc.apply_update(first)
    state = doc.get_state()
    assert str(text) == "e two "
    assert [held_back(u, state) for u in (first, second, third, deletion)] == [
        False,
        False,
        True,
        False,
    ]


def test_the_held_back_among_many_are_found_with_deletions_checked_merged() -> None:
    first, second, third, deletion = _history()
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    doc.apply_update(first)
    doc.apply_update(deletion)
    state = doc.get_state()
    updates = [first, deletion, third, second]
    # the deletion is integrated (its target came first), the third waits for the second
    assert held_back_among(updates, state) == [2, 3]
    assert [inserts_held_back(u, state) for u in updates] == [False, False, True, True]
    doc = pycrdt.Doc()
    doc.apply_update(second)  # a deletion alone past the state: only its delete set says so
    doc.apply_update(deletion)
    state = doc.get_state()
    assert held_back_among([deletion], state) == [0]
    assert not inserts_held_back(deletion, state)


def test_an_undecodable_update_counts_as_held_back() -> None:
    assert held_back(b"\xff\xff\xff", b"\x00")
    assert held_back_among([b"\xff\xff\xff"], b"\x00") == [0]


def test_merged_updates_hold_everything_and_state_maps_read_clocks() -> None:
    updates = _history()
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    text = doc.get("body", type=pycrdt.Text)
    doc.apply_update(merge_many(updates, group=2))
    assert str(text) == "e two three"
    assert list(state_map(doc.get_state()).values()) == [len("one two three")]


#: one-edit updates of six members, in the order one member of a simulated note got them
#: (tests/sim, 1% of frames lost): the 6th is client 1020's second edit, held back for its
#: first; the 7th, client 1006's second, builds on that first edit, which comes last
STUCK = [
    bytes.fromhex(h)
    for h in (
        "0101ea0700040104626f6479055b343a315d00",
        "0101f10700c4ea0700ea0701065b33303a315d00",
        "0101ee0700c4f10704f10705065b31393a315d00",
        "0101f40700c4f10700f10701065b36303a315d00",
        "0101fb0700c4ee0703ee0704065b38373a315d00",
        "0101fc0706c4f10700f40700065b38383a325d00",
        "0101ee0706c4fc0703fc0704065b31393a325d00",
        "0101fc0700c4fb0702fb0703065b38383a315d00",
    )
]


def test_an_update_pycrdt_holds_back_after_its_dependency_came_is_applied_again() -> None:
    causal = Note()
    for i in (0, 1, 2, 3, 4, 7, 5, 6):  # each after what it builds on
        causal.apply_update(STUCK[i])
    assert "[19:2]" in causal.text

    note = Note()
    waiting: list[bytes] = []
    for update in STUCK:
        note.apply_update(update)
        waiting = integrate_stuck(note.apply_update, note.state_vector, waiting, [update])
    assert waiting == []
    assert note.text == causal.text
    assert note.update_since() == causal.update_since()


def test_only_updates_waiting_on_another_client_are_applied_again() -> None:
    doc: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc()
    doc.get("body", type=pycrdt.Text)
    second = STUCK[5]  # client 1020's second edit: waits on its own first
    doc.apply_update(second)
    assert not waits_on_another_client(second, doc.get_state())
    applied: list[bytes] = []
    assert integrate_stuck(applied.append, doc.get_state, [second]) == [second]
    assert applied == []  # a gap in its own clocks: applying it again cannot help
    for update in STUCK[:5]:
        doc.apply_update(update)
    # client 1006's second edit, with its first here: it waits on client 1020's first
    assert waits_on_another_client(STUCK[6], doc.get_state())
    assert not waits_on_another_client(STUCK[0], doc.get_state())  # integrated already
