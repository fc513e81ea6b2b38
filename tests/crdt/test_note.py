"""Note: a pycrdt document edited with Python string offsets, and the updates it hands out.

The editing-trace test replays ``seph-blog1`` from the public ``editing-traces``
collection by Joseph Gentle (CC BY 4.0, https://creativecommons.org/licenses/by/4.0/);
see tests/data/editing-traces/README.md.
"""

from __future__ import annotations

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt.errors import NoteUpdateError, NoteUsageError
from crdt.note import TAKE_HINT_BYTES, Note
from tests.traces import load_trace

ALPHABET = "ab \n" + "éñ" + "o\u0308" + "中文" + "😀👩\u200d💻" + "\U0001f1ef\U0001f1f5"
words = st.text(alphabet=ALPHABET, max_size=8)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 10**6), words),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(0, 6)),
        st.tuples(st.just("append"), st.just(0), words),
        st.tuples(st.just("replace_all"), st.just(0), words),
        st.tuples(
            st.just("patches"),
            st.just(0),
            st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 4), words), max_size=4),
        ),
    ),
    max_size=15,
)


class Recorder:
    """A note whose local updates are taken (as its owner does) each time they are read."""

    def __init__(self) -> None:
        self.taken: list[bytes] = []
        self.notices: list[bool] = []
        self.note = Note(on_local_edit=self.notices.append)

    @property
    def updates(self) -> list[bytes]:
        update = self.note.take_local_update()
        if update is not None:
            self.taken.append(update)
        return self.taken


def apply_model(model: str, patches: list[tuple[int, int, str]]) -> str:
    for position, deleted, inserted in patches:
        model = model[:position] + model[position + deleted :]
        model = model[:position] + inserted + model[position:]
    return model


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_edits_with_non_ascii_text_match_a_str_model_and_reach_a_replica(
    ops: list[tuple[str, int, object]],
) -> None:
    source = Recorder()
    note, replica, model = source.note, Note(), ""
    for kind, where, what in ops:
        index = where % (len(model) + 1)
        if kind == "insert":
            assert isinstance(what, str)
            note.insert(index, what)
            model = model[:index] + what + model[index:]
        elif kind == "delete":
            assert isinstance(what, int)
            length = min(what, len(model) - index)
            note.delete(index, length)
            model = model[:index] + model[index + length :]
        elif kind == "append":
            assert isinstance(what, str)
            note.append(what)
            model += what
        elif kind == "replace_all":
            assert isinstance(what, str)
            note.replace_all(what)
            model = what
        else:
            assert isinstance(what, list)
            patches, scratch = [], model
            for where_, deleted, inserted in what:  # keep every patch inside the text so far
                position = where_ % (len(scratch) + 1)
                deleted = min(deleted, len(scratch) - position)
                patches.append((position, deleted, inserted))
                scratch = apply_model(scratch, [patches[-1]])
            note.apply_patches(patches)
            model = apply_model(model, patches)
        assert note.text == model
        for update in source.updates:
            replica.apply_update(update)
        source.updates.clear()
        assert replica.text == model  # the byte offsets given to pycrdt were the right ones


def test_edits_after_a_remote_update_use_the_new_text_for_offsets() -> None:
    a, b = Recorder(), Note()
    a.note.insert(0, "naïve 😀 text")
    for update in a.updates:
        b.apply_update(update)
    b.insert(0, "中文 ")  # b's offsets mirror is rebuilt from the remote text
    b.insert(len("中文 naïve 😀"), "!")
    b.delete(len("中文 naïve "), 1)
    assert b.text == "中文 naïve ! text"


def test_positions_outside_the_note_raise_note_usage_error_and_change_nothing() -> None:
    note = Note()
    note.insert(0, "héllo 😀")
    calls: list[tuple[str, tuple[int, ...]]] = [
        ("insert", (-1,)),
        ("insert", (8,)),
        ("delete", (-1, 1)),
        ("delete", (0, 8)),
        ("delete", (7, 1)),
        ("delete", (2, -1)),
    ]
    for method, args in calls:
        with pytest.raises(NoteUsageError):
            if method == "insert":
                note.insert(args[0], "x")
            else:
                note.delete(*args)
    with pytest.raises(NoteUsageError):
        note.apply_patches([(9, 0, "x")])
    assert note.text == "héllo 😀"
    note.insert(7, "!")  # the end itself is inside
    assert note.text == "héllo 😀!"


def test_local_edits_are_taken_as_one_update_and_remote_ones_never_leak_into_it() -> None:
    source, local, changes = Recorder(), Recorder(), []
    local.note.on_change.append(lambda: changes.append("change"))
    source.note.insert(0, "from afar")
    local.note.insert(0, "é")
    local.note.append("ü")
    local.note.delete(0, 1)
    local.note.replace_all("fresh")
    assert local.notices == [False]  # told once, at the first edit after a take
    local.note.apply_update(source.updates[0])  # arrives between local edits
    local.note.apply_patches([(0, 1, "F"), (5, 0, "!")])
    local.note.set_meta("title", "t")
    assert len(changes) == 7  # one per local edit, and the front end hears of the remote one
    assert len(local.updates) == 1 and local.notices == [False]
    assert local.note.take_local_update() is None  # nothing new since the take
    # the taken update holds every local edit and nothing of the remote one
    assert pycrdt.get_state(local.updates[0])[0] == 1  # items of one client only: ours
    replica = Note()
    replica.apply_update(local.updates[0])
    replica.apply_update(source.updates[0])
    assert replica.text == local.note.text and replica.title == "t"
    local.note.append("?")
    assert local.notices == [False, False]  # the next edit after the take tells again


def test_large_local_edits_ask_for_a_take_at_once() -> None:
    source = Recorder()
    source.note.append("x" * 100)
    source.note.append("y" * TAKE_HINT_BYTES)
    source.note.append("z")
    assert source.notices == [False, True]
    replica = Note()
    for update in source.updates:
        replica.apply_update(update)
    assert replica.text == source.note.text


def test_a_direct_edit_of_the_document_is_taken_too() -> None:
    source = Recorder()
    source.note.body.insert(0, "direct")  # not through Note: no notice, but still taken
    assert source.notices == []
    replica = Note()
    replica.apply_update(source.updates[0])
    assert replica.text == "direct"


def test_two_notes_exchanging_updates_converge() -> None:
    a, b = Recorder(), Recorder()
    a.note.insert(0, "shared: ")
    for update in a.updates:
        b.note.apply_update(update)
    a.updates.clear()
    # concurrent edits at the same place, with multi-byte characters on both sides
    a.note.append("café ☕")
    a.note.insert(0, "👋 ")
    b.note.append("東京 🗼")
    b.note.delete(0, 1)
    for update in a.updates:
        b.note.apply_update(update)
    for update in b.updates:
        a.note.apply_update(update)
    assert a.note.text == b.note.text
    assert sorted(a.note.text) == sorted("👋 hared: café ☕東京 🗼")
    # the state vector exchange gives the same result from scratch
    c = Note()
    c.apply_update(a.note.update_since(c.state_vector()))
    assert c.text == a.note.text
    text = a.note.text
    a.note.apply_update(b.note.update_since(a.note.state_vector()))  # nothing a lacks
    assert a.note.text == text


@pytest.mark.parametrize("garbage", [b"", b"\xff\xff\xff", b"not an update", b"\x01\x02"])
def test_an_update_that_cannot_be_applied_raises_note_update_error(garbage: bytes) -> None:
    source = Recorder()
    source.note.insert(0, "still here")
    with pytest.raises(NoteUpdateError):
        source.note.apply_update(garbage)
    assert source.note.text == "still here"
    source.note.append("!")  # local edits are still taken
    replica = Note()
    replica.apply_update(source.updates[-1])
    assert replica.text == "still here!"


def test_title_and_metadata() -> None:
    a, b = Recorder(), Note()
    assert a.note.title == ""
    a.note.set_meta("title", "Plans für 2025 🗓")
    a.note.set_meta("tags", ["a", "b"])
    for update in a.updates:
        b.apply_update(update)
    assert b.title == "Plans für 2025 🗓"
    assert b.meta["tags"] == ["a", "b"]
    b.set_meta("title", 42)  # not a string: no title
    assert b.title == ""


def test_root_names_are_the_ones_yjs_clients_bind() -> None:
    note = Note()
    with note.doc.transaction():
        note.insert(0, "hello ✓")
        note.set_meta("title", "greeting")
    # a plain document, as a Yjs client binds it: ydoc.getText("body"), ydoc.getMap("meta")
    client: pycrdt.Doc[object] = pycrdt.Doc()
    body = client.get("body", type=pycrdt.Text)
    meta = client.get("meta", type=pycrdt.Map)
    client.apply_update(note.update_since())
    assert str(body) == "hello ✓" and meta["title"] == "greeting"
    body += " world"  # pycrdt's own offsets (UTF-8 bytes) on the client side
    note.apply_update(client.get_update(note.doc.get_state()))
    assert note.text == "hello ✓ world"


def test_replaying_the_seph_blog1_trace_gives_its_end_content() -> None:
    # positions are code points and the trace types non-ASCII (arrows in an SVG, at its
    # transactions 98,708 and 100,457) in the middle of the text and edits after it, so a
    # wrong offset conversion shows up in the end content. The note takes the text a str
    # model holds just before them, then the rest of the trace one transaction at a time
    # (the whole trace through real nodes: tests/integration/test_notes.py).
    trace = load_trace("seph-blog1")
    txns = trace["txns"]
    assert isinstance(txns, list)
    start = 98_000
    text = str(trace["startContent"])
    for txn in txns[:start]:
        text = apply_model(text, [(p[0], p[1], p[2]) for p in txn["patches"]])
    assert text.isascii()
    source = Recorder()
    source.note.insert(0, text)
    for i, txn in enumerate(txns[start:]):
        source.note.apply_patches([(p[0], p[1], p[2]) for p in txn["patches"]])
        if i % 1000 == 999:
            assert source.updates  # taken now and then, as flushes do
    assert source.note.text == trace["endContent"]
    # and what the note sends is the same document
    replica = Note()
    for update in source.updates:
        replica.apply_update(update)
    assert replica.text == trace["endContent"]
