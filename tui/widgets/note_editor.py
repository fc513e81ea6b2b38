"""The note's editor: Textual's TextArea, repainting only the rows a key changes.

A keystroke in TextArea repaints the whole widget: the cursor's move (its
`selection`) asks for a full refresh, every visible row is drawn again, and
each row drawn reads `WrappedDocument.height`, a sum over every line held.
So a key costs in proportion to the rows on screen times the lines held.

Here the wrapped document knows its height without counting (one entry per
wrapped row is already kept) and notes which rows an edit changed; the editor
repaints those rows, and for a cursor move the rows of the lines the old and
the new selection touch, and nothing else. A rewrap (resize, new text, soft
wrap switched) still repaints everything. Rows that an edit above them moved
(a new line, a line grown by a row) are drawn from the rows kept by what
they show, not drawn again.
"""

from __future__ import annotations

from typing import Any

from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import TextArea
from textual.widgets.text_area import (
    Document,
    DocumentNavigator,
    Location,
    Selection,
    TextAreaTheme,
    WrappedDocument,
)

#: rows kept drawn by what they show (a few screens' worth)
ROWS_KEPT = 512

#: rows changed by the last wrap: [start, end), end None for "to the last row"
Rows = tuple[int, int | None]


class WrappedRows(WrappedDocument):
    """A WrappedDocument whose height costs nothing to read and which notes the rows its
    last rewrap changed."""

    def __init__(self, document: Document, width: int = 0, tab_width: int = 4) -> None:
        #: the rows changed since `take_changed` was last called, None if none
        self.changed: Rows | None = None
        super().__init__(document, width, tab_width)

    @property
    def height(self) -> int:
        """The height of the wrapped document: one entry per row is kept already."""
        return len(self._offset_to_line_info)

    def wrap(self, width: int, tab_width: int | None = None) -> None:
        super().wrap(width, tab_width)
        self.changed = (0, None)

    def wrap_range(self, start: Location, old_end: Location, new_end: Location) -> None:
        rows_before, lines_before = self.height, len(self._line_index_to_offsets)
        super().wrap_range(start, old_end, new_end)
        last = self.document.line_count - 1
        top = max(0, min(start[0], old_end[0], new_end[0], last))
        bottom = max(top, min(max(start[0], new_end[0]), last))
        first_row = self._line_index_to_offsets[top][0]
        if self.height != rows_before or len(self._line_index_to_offsets) != lines_before:
            self._mark(first_row, None)  # the rows below moved
        else:
            self._mark(first_row, self._line_index_to_offsets[bottom][-1] + 1)

    def _mark(self, start: int, end: int | None) -> None:
        if self.changed is not None:
            old_start, old_end = self.changed
            start = min(start, old_start)
            end = None if end is None or old_end is None else max(end, old_end)
        self.changed = (start, end)

    def take_changed(self) -> Rows | None:
        """The rows changed since the last call, and forget them."""
        changed, self.changed = self.changed, None
        return changed

    def line_rows(self, line: int) -> tuple[int, int]:
        """[first, last] rows of document line `line` (clamped to the lines there are)."""
        offsets = self._line_index_to_offsets
        rows = offsets[max(0, min(line, len(offsets) - 1))]
        return rows[0], rows[-1]


class NoteEditor(TextArea):
    """A TextArea that repaints only the rows an edit or a cursor move changes."""

    # a cursor move repaints the rows it touches (`_watch_selection`), not the whole widget
    selection: reactive[Selection] = reactive(
        Selection(), init=False, always_update=True, repaint=False
    )

    wrapped_document: WrappedRows
    #: the theme styled from the CSS as it is now (None: style it at the next paint)
    _styled_theme: TextAreaTheme | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: rows drawn, by what they show (see `_row_key`), for rows that move
        self._rows: LRUCache[tuple[object, ...], Strip] = LRUCache(ROWS_KEPT)
        super().__init__(*args, **kwargs)

    def _set_document(self, text: str, language: str | None) -> None:
        if language:
            raise ValueError("the note editor holds plain text")
        self.document = Document(text)
        self.wrapped_document = WrappedRows(self.document, tab_width=self.indent_width)
        self.navigator = DocumentNavigator(self.wrapped_document)
        self._build_highlight_map()
        self.move_cursor((0, 0))
        self._rewrap_and_refresh_virtual_size()

    def notify_style_update(self) -> None:
        self._styled_theme = None
        self._rows.clear()
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        # TextArea keys the rows it keeps by their place on screen and (soft-wrapped) the
        # selection, so rows that an edit above moved are all drawn again. A row on no line
        # the selection or a matched bracket is on shows only its text: kept by that.
        key = self._row_key(y)
        if key is None:
            return super().render_line(y)
        strip = self._rows.get(key)
        if strip is None:
            strip = self._render_line(y)
            self._rows[key] = strip
        return strip

    def _row_key(self, y: int) -> tuple[object, ...] | None:
        """What row `y` on screen shows, if only its text decides how it looks."""
        rows = self.wrapped_document._offset_to_line_info
        row = self.scroll_offset.y + y
        if not self.soft_wrap or self.placeholder or self._highlights or row >= len(rows):
            return None
        line, section = rows[row]
        (top, _), (bottom, _) = sorted(self.selection)
        bracket = self._matching_bracket_location
        if top <= line <= bottom or (bracket is not None and bracket[0] == line):
            return None
        return (
            self.document[line],
            section,
            self.size,
            self.wrapped_document._width,
            self.indent_width,
            self.gutter_width,
            self.show_line_numbers and line + self.line_number_start,
        )

    def render_lines(self, crop: Region) -> list[Strip]:
        # TextArea styles its theme from the CSS on every paint, and a repaint (even of one
        # row) drops the cached styles that takes: about as long as drawing the row. The
        # CSS changes only where Textual calls `notify_style_update` (the line cache
        # relies on that too), so style the theme once per theme and change of CSS.
        theme = self._theme
        if theme and self._styled_theme is not theme:
            theme.apply_css(self)
            self._styled_theme = theme
            self._rows.clear()  # drawn in the styles before
        return super(TextArea, self).render_lines(crop)

    def _watch_selection(self, previous_selection: Selection, selection: Selection) -> None:
        bracket = self._matching_bracket_location
        super()._watch_selection(previous_selection, selection)
        if not self.is_mounted:
            return
        lines = [*previous_selection, *selection]
        for match in (bracket, self._matching_bracket_location):
            if match is not None:
                lines.append(match)
        self._refresh_rows(
            self.wrapped_document.line_rows(min(line for line, _ in lines))[0],
            self.wrapped_document.line_rows(max(line for line, _ in lines))[1] + 1,
        )

    def _refresh_size(self) -> None:
        height = self.wrapped_document.height
        view = self.container_size.height
        if (
            height != self.virtual_size.height
            and self.soft_wrap
            and self.is_mounted
            and self.show_vertical_scrollbar
            and min(height, self.virtual_size.height) > view
            and self.virtual_size.width == 0
        ):
            # Taller or shorter with the scrollbar shown before and after: a new length
            # for the scrollbar, not a new layout of the whole screen (which setting
            # `virtual_size` asks for, and which costs ten times the key).
            self.set_reactive(Widget.virtual_size, Size(0, height))
            self._scroll_update(self.virtual_size)
        else:
            super()._refresh_size()
        changed = self.wrapped_document.take_changed()
        if changed is not None and self.is_mounted:
            self._refresh_rows(*changed)

    def _refresh_rows(self, start: int, end: int | None) -> None:
        """Repaint rows [start, end) of the document (to the bottom of the view if end is
        None), as far as they are in view."""
        if self.placeholder:  # the placeholder is drawn over rows no edit touches
            self.refresh()
            return
        top = self.scroll_offset.y
        bottom = top + self.size.height
        start, stop = max(start, top), bottom if end is None else min(end, bottom)
        if start < stop:
            self.refresh_lines(start, stop - start)
