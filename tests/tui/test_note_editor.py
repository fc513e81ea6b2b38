"""The note's editor (tui.widgets.note_editor): it repaints only the rows a key changes, and
what stays on screen is what a full repaint would draw."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual._styles_cache import StylesCache
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets.text_area import Document, WrappedDocument

from tui.widgets.note_editor import NoteEditor, WrappedRows

WIDTH = 20


def numbered(count: int) -> str:
    """`count` lines, some long enough to wrap at WIDTH."""
    return "\n".join(f"{i:03d} " + "word " * (i % 7) for i in range(count))


def rows(wrapped: WrappedDocument) -> list[str]:
    """The wrapped document's rows, top to bottom."""
    return [section for line in wrapped.lines for section in line]


# -- the wrapped document ------------------------------------------------------------

edits = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 30), st.text("ab \n")),
    min_size=1,
    max_size=12,
)


@given(st.integers(1, 30), edits)
@settings(max_examples=60, deadline=None)
def test_an_edit_leaves_the_rows_as_a_fresh_wrap_and_names_every_row_it_changed(
    lines: int, script: list[tuple[int, int, int, str]]
) -> None:
    document = Document(numbered(lines))
    wrapped = WrappedRows(document, width=WIDTH)
    for row_pick, column_pick, length, text in script:
        wrapped.take_changed()
        before = rows(wrapped)
        row = row_pick % document.line_count
        start = (row, column_pick % (len(document[row]) + 1))
        end_index = min(len(document.text), document.get_index_from_location(start) + length)
        end = document.get_location_from_index(end_index)
        result = document.replace_range(start, end, text)
        wrapped.wrap_range(start, end, result.end_location)

        fresh = WrappedDocument(Document(document.text), width=WIDTH)
        after = rows(wrapped)
        assert after == rows(fresh)
        assert wrapped.height == fresh.height == len(after)
        changed = wrapped.take_changed()
        assert changed is not None
        first, last = changed
        unchanged = [y for y in range(len(after)) if y < first or (last is not None and y >= last)]
        # a row left out of the change is the same text at the same place: not repainting it
        # leaves the screen right
        assert all(y < len(before) and before[y] == after[y] for y in unchanged)


def test_the_height_is_kept_not_counted() -> None:
    wrapped = WrappedRows(Document(numbered(600)), width=WIDTH)
    wrapped._wrap_offsets = []  # what Textual's height sums over: not read
    assert wrapped.height == len(wrapped._offset_to_line_info) > 600


# -- the editor on screen ---------------------------------------------------------------


class EditorApp(App[None]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        editor = NoteEditor(self.text, soft_wrap=True, id="editor")
        editor.cursor_blink = False  # the cursor drawn the same in every paint
        yield editor


def stale_rows(editor: NoteEditor) -> list[int]:
    """The widget's rows (border included) whose painted strip differs from a full
    repaint now."""
    region = Region(0, 0, *editor.region.size)
    kept = editor._styles_cache._cache
    editor._line_cache.clear()
    editor._rows.clear()
    fresh = StylesCache().render_widget(editor, region)
    return [y for y, strip in enumerate(fresh) if kept.get(y) != strip]


def painted_text(editor: NoteEditor) -> str:
    kept = editor._styles_cache._cache
    return "\n".join(kept[y].text for y in sorted(kept))


async def test_typing_editing_and_moving_leave_no_stale_row_on_screen() -> None:
    app = EditorApp(numbered(80))
    async with app.run_test(size=(40, 20)) as pilot:
        editor = app.query_one(NoteEditor)
        editor.focus()
        await pilot.pause()
        assert stale_rows(editor) == []
        rng = random.Random(25)
        steps = [
            ("type", "Q"),
            ("press", "enter"),  # the rows below move down
            ("type", "a long run of words that wraps onto a row of its own"),  # a row more
            ("press", "backspace"),
            ("press", "ctrl+z"),  # undo
            ("press", "ctrl+y"),  # redo
            ("press", "down"),
            ("press", "shift+down"),  # a selection over two lines
            ("press", "shift+end"),
            ("press", "delete"),  # the selection deleted: rows move up
            ("press", "home"),
            ("type", "("),
            ("press", "down"),
            ("press", "down"),
            ("type", ")"),
            ("press", "up"),
            ("press", "up"),
            ("press", "home"),  # at "(": the ")" two lines down is highlighted
            ("press", "right"),  # and is not any more
            ("replace", "remote"),  # another's edit above the cursor, as the note view does
            ("press", "pagedown"),
            ("type", "z"),
            ("numbers", True),  # line numbers: a row moved down shows another number
            ("press", "enter"),
            ("press", "backspace"),
            ("numbers", False),
            ("press", "ctrl+home"),
            ("press", "enter"),
            ("theme", "monokai"),  # other colours: no row drawn before is shown again
            ("press", "enter"),
        ]
        for kind, what in steps:
            if kind == "type":
                await pilot.press(*what)
            elif kind == "press":
                await pilot.press(what)
            elif kind == "numbers":
                editor.show_line_numbers = bool(what)
            elif kind == "theme":
                editor.theme = str(what)
            else:
                line = rng.randrange(0, editor.selection.end[0] + 1)
                editor.replace("x\ny", (line, 0), (line, 2), maintain_selection_offset=True)
            await pilot.pause()
            assert stale_rows(editor) == [], f"after {kind} {what!r}"
        assert "z" in painted_text(editor)
        # the scrollbar follows the height, grown by rows without a layout of the screen
        assert editor.vertical_scrollbar.window_virtual_size == editor.wrapped_document.height


async def test_a_key_repaints_the_same_rows_whatever_the_lines_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn: dict[int, list[str]] = {}
    rows_drawn: list[str] = []
    render_line = StylesCache.render_line

    def counted(cache: StylesCache, *args: Any) -> Any:
        rows_drawn.append(type(cache_owner.get(cache)).__name__)
        return render_line(cache, *args)

    cache_owner: dict[StylesCache, Widget] = {}
    monkeypatch.setattr(StylesCache, "render_line", counted)
    for lines in (30, 600):  # both more than the screen shows: the scrollbar shows in both
        app = EditorApp(numbered(lines))
        async with app.run_test(size=(40, 20)) as pilot:
            editor = app.query_one(NoteEditor)
            editor.focus()
            await pilot.pause()
            cache_owner.update((w._styles_cache, w) for w in app.screen.walk_children(Widget))
            cache_owner[app.screen._styles_cache] = app.screen
            cache_owner[editor.vertical_scrollbar._styles_cache] = editor.vertical_scrollbar
            rows_drawn.clear()
            await pilot.press("x")
            await pilot.pause()
            drawn[lines] = list(rows_drawn)
            assert editor.document[0].startswith("x000")
            assert "x000" in painted_text(editor)
    # the cursor's row of the editor (and nothing else on screen) is drawn again
    assert drawn[30] == drawn[600] == ["NoteEditor"]
