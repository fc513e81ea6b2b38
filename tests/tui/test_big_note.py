"""A note bigger than the editor's window (tui.widgets.text_window), under Pilot: the
editor holds part of it, and typing, moving and others' edits keep note and editor in step."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from textual.pilot import Pilot
from textual.widgets import TextArea

from crdt.notes import Notes
from tests.conftest import wait_until
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.widgets.note_view import NoteView
from tui.widgets.text_window import WINDOW_CHARS

#: 5,000 numbered lines, about 3 windows' worth, with non-ASCII text in each
TEXT = "\n".join(f"line {i:04d} · ünïcode" for i in range(5_000))


@contextlib.asynccontextmanager
async def big_note(
    mesh: Mesh,
) -> AsyncIterator[tuple[Notes, str, Pilot[Any], NoteView, TextArea]]:
    """The UI of a peer with TEXT open as a note: (notes, note id, pilot, view, editor)."""
    await mesh.start("A")
    notes = mesh.notes_of("A")
    note_id = notes.new(mesh["A"].chat.rooms.new("team"), "big")
    notes.append(note_id, TEXT)
    assert len(TEXT) > 3 * WINDOW_CHARS
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        editor = screen.query_one("#note-editor", TextArea)
        yield notes, note_id, pilot, screen.query_one(NoteView), editor


def in_step(view: NoteView, editor: TextArea) -> bool:
    """The editor holds exactly the window of the note's current text."""
    assert view.note is not None
    text = view.note.text
    return view.shadow == text and editor.text == text[view.window.start : view.window.end]


async def test_a_big_note_opens_as_a_window_and_takes_edits_at_both_ends(mesh: Mesh) -> None:
    async with big_note(mesh) as (notes, note_id, pilot, view, editor):
        assert editor.text.startswith("line 0000 · ünïcode\nline 0001")
        assert view.window.start == 0 and len(editor.text) <= WINDOW_CHARS
        await pilot.press(*"ab")
        await wait_until(lambda: notes.cat(note_id) == "ab" + TEXT, what="the edit at the start")
        # the cursor goes down: the window follows it, to the note's end
        for _ in range(40):
            if view.window.end == len(view.shadow):
                break
            editor.move_cursor((editor.document.line_count - 1, 0))
            await pilot.pause()
        assert view.window.end == len(view.shadow) and view.window.start > 0
        assert editor.text.endswith("line 4999 · ünïcode") and in_step(view, editor)
        editor.move_cursor(editor.document.end)
        await pilot.press(*"!é")
        await wait_until(
            lambda: notes.cat(note_id) == "ab" + TEXT + "!é", what="the edit at the end"
        )
        assert in_step(view, editor)
        # and back up: the first line again holds what was typed there
        for _ in range(40):
            if view.window.start == 0:
                break
            editor.move_cursor((0, 0))
            await pilot.pause()
        assert editor.text.startswith("abline 0000") and in_step(view, editor)


async def test_edits_from_elsewhere_before_in_and_after_the_window(mesh: Mesh) -> None:
    async with big_note(mesh) as (notes, note_id, pilot, view, editor):
        middle = TEXT.index("line 2500")
        for _ in range(40):  # the cursor to line 2500, the window about it
            if view.window.start <= middle <= view.window.end and view.window.start > 0:
                break
            held = view.shadow[view.window.start : view.window.end]
            row = held.count("\n", 0, max(0, min(middle, view.window.end) - view.window.start))
            editor.move_cursor((row, 0))
            await pilot.pause()
        window = view.window
        assert window.start < middle < window.end and window.end < len(view.shadow)
        other = notes.get(note_id)  # another writer of the same note (say, the CLI)
        other.insert(0, "top\n")  # before the window: it shifts, the editor stays
        await wait_until(lambda: view.window.start == window.start + 4, what="the shift")
        assert in_step(view, editor)
        other.insert(len(other), "\nbottom")  # after it: nothing moves
        await wait_until(lambda: view.shadow.endswith("bottom"), what="the edit after")
        assert view.window.start == window.start + 4 and in_step(view, editor)
        at = view.shadow.index("line 2500")
        other.insert(at, ">> ")  # inside it: the editor shows it
        await wait_until(lambda: ">> line 2500" in editor.text, what="the edit inside")
        assert in_step(view, editor)
        # one that spans the window's start: a new window, still in step
        other.delete(view.window.start - 5, 10)
        await wait_until(lambda: len(view.shadow) == len(other.text), what="the edit across")
        assert in_step(view, editor)
        assert ">> line 2500" in editor.text


async def test_own_keystrokes_are_not_read_back_from_the_note(mesh: Mesh) -> None:
    async with big_note(mesh) as (notes, note_id, pilot, view, editor):
        looked: list[str] = []
        apply_remote = view._apply_remote

        def counted() -> None:
            looked.append(view.shadow[:3])
            apply_remote()

        view._apply_remote = counted  # type: ignore[method-assign]
        await pilot.press(*"abc")
        await wait_until(lambda: notes.cat(note_id) == "abc" + TEXT, what="the keys in the note")
        assert looked == []  # the editor shows them already: the note's text is not read
        notes.get(note_id).insert(0, ">")  # another writer's edit still is
        await wait_until(lambda: editor.text.startswith(">abc"), what="the other edit shown")
        assert looked and in_step(view, editor)
