"""The note view: a TextArea bound to a note's CRDT, a title, and who else edits it.

Local typing is turned into CRDT edits by comparing the editor's text with
the text last in step with the note (the shadow): the changed span becomes
one delete and one insert. Remote edits come the other way as a replace of
just the changed span, through TextArea's own edit machinery, so the local
cursor and selection keep their place relative to the text around them.

The editor holds a window of the note (:mod:`tui.widgets.text_window`), all
of a note of up to 32 KiB, a few hundred lines about the cursor of a bigger
one, so that a big note opens and takes keystrokes as fast as a small one.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, LoadingIndicator, Static, TextArea

from chat.files.links import file_link, href_file, link_at
from crdt.note import Note
from mesh.errors import MeshError
from tui.file_screens import AttachmentPicker, open_attachment
from tui.session import Session
from tui.widgets.note_editor import NoteEditor
from tui.widgets.text_window import Window, around, margin

if TYPE_CHECKING:
    from textual.widgets import Markdown

PRESENCE_WINDOW = 60.0
#: your cursor goes out at most this often (seconds)
CURSOR_EVERY = 0.2


def changed_span(old: str, new: str) -> tuple[int, int, int]:
    """(start, end in old, end in new) of the one span where `old` and `new` differ."""
    limit = min(len(old), len(new))
    low, high = 0, limit
    while low < high:  # longest common prefix, by halving: C-speed slice compares
        middle = (low + high + 1) // 2
        if old[:middle] == new[:middle]:
            low = middle
        else:
            high = middle - 1
    start = low
    low, high = 0, limit - start
    while low < high:  # longest common suffix that does not overlap the prefix
        middle = (low + high + 1) // 2
        if old[len(old) - middle :] == new[len(new) - middle :]:
            low = middle
        else:
            high = middle - 1
    return start, len(old) - low, len(new) - low


def location(text: str, index: int) -> tuple[int, int]:
    """The (row, column) of character `index` in `text`, as TextArea counts them."""
    row = text.count("\n", 0, index)
    return row, index - (text.rfind("\n", 0, index) + 1)


def offset(text: str, row: int, column: int) -> int:
    """The character offset of (row, column) in `text`, as TextArea counts (`location` undone)."""
    start = 0
    for _ in range(row):
        newline = text.find("\n", start)
        if newline < 0:
            return len(text)
        start = newline + 1
    end = text.find("\n", start)
    return min(start + column, len(text) if end < 0 else end)


class NoteView(Vertical):
    """Edits one note live; links to attachments open from it (docs/files.md)."""

    BINDINGS = [
        Binding("ctrl+o", "open_link", "Open link", show=False),
        Binding("ctrl+l", "link_file", "Link a file", show=False),
    ]

    def __init__(self, session: Session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.note_id: str | None = None
        self.note: Note | None = None
        self.shadow = ""
        #: the part of the shadow the editor holds
        self.window = Window(0, 0)
        self.editors: dict[str, float] = {}
        #: others' cursors in the open note: peer -> (name, colour, character offset)
        self.cursors: dict[str, tuple[str, str, int]] = {}
        self._cursor_due = False
        #: a local edit is going into the note now
        self._pushing = False
        #: `_apply_remote` is scheduled
        self._remote_due = False
        self._preview: Markdown | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="note-header"):
            yield Input(placeholder="Title", id="note-title")
            yield LoadingIndicator(id="note-loading")
        yield NoteEditor(id="note-editor", soft_wrap=True, show_line_numbers=False)
        yield Static("", id="note-presence")

    def on_mount(self) -> None:
        self.query_one("#note-loading", LoadingIndicator).display = False

    # -- the Markdown preview ----------------------------------------------------------

    @property
    def previewing(self) -> bool:
        return self._preview is not None and bool(self._preview.display)

    def action_toggle_preview(self) -> None:
        """Show the note rendered as Markdown (kept current as edits come), or the editor."""
        from textual.widgets import Markdown

        preview = self._preview
        editor = self.query_one("#note-editor", TextArea)
        if preview is not None and self.previewing:
            preview.display, editor.display = False, True
            editor.focus()
            return
        self._push_local_edits()
        if preview is None:  # made when first shown: Markdown's parser is not imported before
            # links open here (on_markdown_link_clicked), not by Markdown's own handler
            self._preview = Markdown(self.shadow, id="note-preview", open_links=False)
            self.mount(self._preview, after=editor)
        else:
            preview.update(self.shadow)
            preview.display = True
        editor.display = False

    # -- links to attachments ----------------------------------------------------------

    def action_open_link(self) -> None:
        """Open the attachment linked under the cursor."""
        editor = self.query_one("#note-editor", TextArea)
        row, column = editor.cursor_location
        link = link_at(editor.document.get_line(row), column)
        if link is None:
            self.app.notify(
                "no link to a file at the cursor (ctrl+l links one)", severity="warning"
            )
            return
        open_attachment(self.app, self.session, link.file_id)

    def action_link_file(self) -> None:
        """Pick a file known here and link it at the cursor."""
        if self.note_id is None or self.previewing:
            return
        note_id = self.note_id
        room = next((n["room_id"] for n in self.session.notes() if n["note_id"] == note_id), None)

        def link(file_id: str | None) -> None:
            if file_id is None or self.note_id != note_id:
                return
            file = self.session.file(file_id)
            editor = self.query_one("#note-editor", TextArea)
            editor.insert(file_link(file["name"], file["file_id"]))
            editor.focus()

        self.app.push_screen(AttachmentPicker(self.session.files(), room), link)

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        """A link clicked in the preview: an attachment opens here, any other link as the
        terminal opens links."""
        event.stop()
        file_id = href_file(event.href)
        if file_id is None:
            self.app.open_url(event.href)
        else:
            open_attachment(self.app, self.session, file_id)

    def show(self, note_id: str) -> None:
        if self.note is not None:
            self._detach()
        try:
            note = self.session.open_note(note_id)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.note_id, self.note = note_id, note
        self.shadow = note.text
        editor = self.query_one("#note-editor", TextArea)
        self._load_window(0)
        self.query_one("#note-title", Input).value = note.title
        if self.previewing and self._preview is not None:
            self._preview.update(self.shadow)
        note.on_change.append(self._note_changed)
        self.editors = {}
        self.cursors = {}
        self._show_presence()
        editor.focus()

    def _detach(self) -> None:
        if self.note is not None and self._note_changed in self.note.on_change:
            self.note.on_change.remove(self._note_changed)
        if self.note_id is not None:
            try:
                self.session.set_cursor(self.note_id, None)  # no cursor of yours shows now
                self.session.close_note(self.note_id)
            except MeshError as exc:  # an attached UI whose node does not answer
                self.app.notify(f"edits not sent: {exc}", severity="error")
        self.note = None
        self.note_id = None  # flushed: nothing is left to write, even once the node stops

    def close(self) -> None:
        """Stop editing and write the open note out; the app calls it before the node stops
        (unmounting comes after, when the database is closed)."""
        self._push_local_edits()
        self._detach()

    def on_unmount(self) -> None:
        self._detach()

    # -- local edits -> CRDT ---------------------------------------------------

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._push_local_edits()

    def _push_local_edits(self) -> None:
        if self.note is None:
            return
        text = self.query_one("#note-editor", TextArea).text
        window = self.window
        held = self.shadow[window.start : window.end]
        if text == held:
            return  # a remote change we applied ourselves
        start, old_end, new_end = changed_span(held, text)
        self._pushing = True  # the note's change callbacks for this edit need no answer
        try:
            with self.note.doc.transaction():
                self.note.delete(window.start + start, old_end - start)
                self.note.insert(window.start + start, text[start:new_end])
        except MeshError as exc:
            self.app.notify(f"edit not applied: {exc}", severity="error")
        finally:
            self._pushing = False
        self.shadow = self.shadow[: window.start] + text + self.shadow[window.end :]
        self.window = Window(window.start, window.start + len(text))

    # -- the window the editor holds -------------------------------------------------

    def _load_window(self, index: int) -> None:
        """Give the editor the window of the shadow about character `index`, the cursor
        there."""
        self.window = around(self.shadow, index)
        held = self.shadow[self.window.start : self.window.end]
        editor = self.query_one("#note-editor", TextArea)
        editor.load_text(held)
        editor.move_cursor(location(held, index - self.window.start), center=True)

    def _cursor_index(self, end: bool = True) -> int:
        """The character offset in the note of the cursor (or of the selection's start)."""
        editor = self.query_one("#note-editor", TextArea)
        held = self.shadow[self.window.start : self.window.end]
        where = editor.selection.end if end else editor.selection.start
        return self.window.start + offset(held, *where)

    def _follow_cursor(self) -> None:
        """Move the window when the cursor comes near one of its edges inside the note."""
        if self.note is None or (self.window.start == 0 and self.window.end == len(self.shadow)):
            return  # no note, or all of it held
        editor = self.query_one("#note-editor", TextArea)
        row = editor.selection.end[0]
        rows = editor.document.line_count
        near = margin(rows)
        if (row < near and self.window.start > 0) or (
            row >= rows - near and self.window.end < len(self.shadow)
        ):
            self._push_local_edits()
            self._load_window(self._cursor_index())

    # -- CRDT -> editor ------------------------------------------------------------

    def _note_changed(self) -> None:
        # our own edits are in the editor already; other changes are looked at once per turn
        # (reading the note's text is the costly part of that for a big note)
        if not self._pushing and not self._remote_due:
            self._remote_due = True
            self.call_later(self._apply_remote)

    def _apply_remote(self) -> None:
        self._remote_due = False
        if self.note is None:
            return
        self._push_local_edits()  # keystrokes not yet turned into edits go first
        new = self.note.text
        if new == self.shadow:
            return
        editor = self.query_one("#note-editor", TextArea)
        start, old_end, new_end = changed_span(self.shadow, new)
        window = self.window.after_edit(start, old_end, new_end)
        if window is None:  # across an edge of the window: a new window about the cursor
            cursor = self._cursor_index()
            self.shadow = new
            # the cursor keeps its place in the text around it (or goes after what replaced it)
            if cursor >= start:
                cursor = max(new_end, cursor + new_end - old_end)
            self._load_window(cursor)
        else:
            if self.window.start <= start and old_end <= self.window.end:  # inside it
                held = self.shadow[self.window.start : self.window.end]
                editor.replace(
                    new[start:new_end],
                    location(held, start - self.window.start),
                    location(held, old_end - self.window.start),
                    maintain_selection_offset=True,
                )
            self.shadow, self.window = new, window
            if editor.text != new[window.start : window.end]:  # newline styles differ, say
                self._load_window(self._cursor_index())
        if self.previewing and self._preview is not None:
            self._preview.update(self.shadow)
        self.query_one("#note-title", Input).value = self.note.title

    # -- title and presence --------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "note-title" or self.note_id is None:
            return
        event.stop()
        try:
            self.session.rename_note(self.note_id, event.value)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"renamed to {event.value.strip()!r}")
        self.query_one("#note-editor", TextArea).focus()

    # -- cursors ---------------------------------------------------------------------------

    def on_text_area_selection_changed(self, event: TextArea.SelectionChanged) -> None:
        event.stop()
        self._follow_cursor()
        if self.note_id is not None and not self._cursor_due:
            self._cursor_due = True
            self.set_timer(CURSOR_EVERY, self._send_cursor)

    def _send_cursor(self) -> None:
        self._cursor_due = False
        if self.note_id is None:
            return
        self._push_local_edits()  # the offsets count the text with the keystrokes typed
        anchor, head = self._cursor_index(end=False), self._cursor_index()
        with contextlib.suppress(MeshError):  # a cursor not shown is no loss
            self.session.set_cursor(self.note_id, anchor, head)

    def cursor_event(self, data: dict[str, Any]) -> None:
        """Another peer's cursor moved (or went) in some note (from the notes listener)."""
        if data.get("note_id") != self.note_id or data.get("peer_id") == self.session.me:
            return
        if data.get("index") is None:
            self.cursors.pop(data["peer_id"], None)
        else:
            self.cursors[data["peer_id"]] = (data["name"], data["color"], int(data["index"]))
            self.editors[data["peer_id"]] = time.monotonic()
        self._show_presence()

    def note_event(self, data: dict[str, Any]) -> None:
        """A remote update to some note arrived (from the notes listener)."""
        if data.get("note_id") == self.note_id and data.get("author") != self.session.me:
            self.editors[data["author"]] = time.monotonic()
            self._show_presence()

    def _show_presence(self) -> None:
        now = time.monotonic()
        recent = [p for p, seen in self.editors.items() if now - seen < PRESENCE_WINDOW]
        shown = []
        for peer in recent:
            name = escape(self.session.display_name(peer))
            cursor = self.cursors.get(peer)
            if cursor is None:
                shown.append(name)
                continue
            row, column = location(self.shadow, min(cursor[2], len(self.shadow)))
            shown.append(f"[{cursor[1]}]▍{name}[/] line {row + 1}:{column + 1}")
        self.query_one("#note-presence", Static).update(
            f"also editing: {', '.join(shown)}" if shown else "[dim]no one else is editing now[/]"
        )

    def set_loading(self, loading: bool) -> None:
        self.query_one("#note-loading", LoadingIndicator).display = loading
