"""Update bytes: merging, and telling whether a document holds an update back."""

from __future__ import annotations

import pycrdt

from crdt.updates import (
    decodable,
    deletion_ends,
    encode_state,
    held_back,
    held_back_among,
    inserts_held_back,
    merge_many,
    state_map,
    struct_starts,
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


def test_struct_starts_name_each_client_and_its_first_clock() -> None:
    first, second, third, deletion = _history()
    client = next(iter(state_map(pycrdt.get_state(first))))
    assert struct_starts(first) == [(client, 0)]
    assert struct_starts(third) == [(client, len("one two "))]
    assert struct_starts(deletion) == []  # it only deletes
    other: pycrdt.Doc[pycrdt.Text] = pycrdt.Doc(client_id=client + 1)
    other.apply_update(merge_many([first, second]))
    before = other.get_state()
    other.get("body", type=pycrdt.Text).insert(0, ">")
    merged = merge_many([third, other.get_update(before)])
    assert sorted(struct_starts(merged) or []) == [(client, 8), (client + 1, 0)]
    assert struct_starts(b"\x01\x01") is None  # truncated
    assert encode_state(state_map(before)) == before


def test_deletion_ends_say_how_far_each_client_must_reach() -> None:
    first, _, third, deletion = _history()
    client = next(iter(state_map(pycrdt.get_state(first))))
    assert deletion_ends(deletion) == {client: 2}  # "on" of "one"
    assert deletion_ends(first) is None  # it carries structs
    assert decodable(third) and not decodable(b"\x01\x05\xff")
