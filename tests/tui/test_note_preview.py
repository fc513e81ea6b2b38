"""The note view's Markdown preview (f2) and the note's history (h), under Pilot."""

from __future__ import annotations

import pytest
from textual.widgets import Markdown, TextArea

from crdt import versions
from tests.conftest import wait_until
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp
from tui.history_screen import HistoryScreen
from tui.main_screen import MainScreen


async def test_f2_shows_the_note_as_markdown_and_back(mesh: Mesh) -> None:
    await mesh.start("A")
    notes = mesh.notes_of("A")
    room = mesh["A"].chat.rooms.new("team")
    note_id = notes.new(room, "plan")
    notes.append(note_id, "# Plan\n\n- ship it\n")
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        editor = screen.query_one("#note-editor", TextArea)
        assert not screen.query("#note-preview") and editor.display  # made when first shown
        await pilot.press("f2")
        await pilot.pause()
        preview = screen.query_one("#note-preview", Markdown)
        assert preview.display and not editor.display
        await wait_until(lambda: preview.query("MarkdownH1"), what="the heading rendered")
        assert "Plan" in str(preview.query_one("MarkdownH1").render())
        assert preview.query("MarkdownBulletList")
        # an edit arriving while previewing shows in the preview
        notes.append(note_id, "\n## Later\n")
        await wait_until(
            lambda: len(preview.query("MarkdownH2")) == 1, what="the new heading in the preview"
        )
        await pilot.press("f2")
        await pilot.pause()
        assert editor.display and not preview.display and editor.has_focus
        await pilot.press("f2")  # shown again: the same preview, current
        await pilot.pause()
        assert preview.display and not editor.display
        assert len(preview.query("MarkdownH2")) == 1


async def test_h_lists_a_notes_versions_shows_each_and_restores_one(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(versions, "QUIET", 0.2)
    await mesh.start("A")
    notes = mesh.notes_of("A")
    room = mesh["A"].chat.rooms.new("team")
    note_id = notes.new(room, "plan")
    notes.append(note_id, "first draft\n")
    await wait_until(lambda: len(notes.versions.all(note_id)) == 1, what="version 1")
    notes.append(note_id, "second thoughts\n")
    await wait_until(lambda: len(notes.versions.all(note_id)) == 2, what="version 2")
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        screen.action_focus_sidebar()
        await pilot.press("h")
        await pilot.pause()
        history = app.screen
        assert isinstance(history, HistoryScreen)
        shown = history.query_one("#history-text", TextArea)
        assert shown.text == "first draft\nsecond thoughts\n"  # the newest first
        await pilot.press("down")
        await pilot.pause()
        assert shown.text == "first draft\n"
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await wait_until(lambda: notes.cat(note_id) == "first draft\n", what="the restore")
        editor = screen.query_one("#note-editor", TextArea)
        await wait_until(lambda: editor.text == "first draft\n", what="the editor shows it")
