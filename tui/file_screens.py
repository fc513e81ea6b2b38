"""Screens for attachments: picking a file to send, picking one to link, and one opened.

- :class:`FilePicker` (``u`` in a conversation): a directory tree to pick the
  file from, and a line to type or paste its path into.
- :class:`AttachmentPicker` (ctrl+l in a note): the files known here, those of
  the note's room first; the one picked is linked at the cursor.
- :class:`AttachmentScreen` (a link opened in a note, or ``o`` on a message):
  the file's name, size and state, its progress while it arrives, a picture
  drawn where the terminal can; ``f`` fetches it, ``s`` writes it out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DirectoryTree, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from chat.files.export import human_size
from mesh.errors import MeshError
from tui.dialogs import Prompt
from tui.session import Session
from tui.widgets.format import attachment_text, escape, progress_line
from tui.widgets.picture import PREVIEW_MAX, can_draw, picture

#: seconds between looks at a file's progress while its screen is open
POLL_EVERY = 0.5

_MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 90%; max-width: 100; height: auto; max-height: 90%;
                    border: round $accent; padding: 1 2; background: $surface; }}
{name} Label {{ margin-bottom: 1; }}
"""


class FilePicker(ModalScreen[str | None]):
    """Pick a file to send: from the tree (Enter on a file), or a path typed or pasted."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = (
        _MODAL_CSS.format(name="FilePicker")
        + "FilePicker DirectoryTree { height: 20; margin-top: 1; }"
    )

    def __init__(self, question: str, start: Path | None = None) -> None:
        super().__init__()
        self.question = question
        self.start = start if start is not None else Path.home()

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(placeholder="a path (typed or pasted), or pick below", id="picker-path")
            yield DirectoryTree(self.start, id="picker-tree")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.dismiss(str(event.path))

    def action_cancel(self) -> None:
        self.dismiss(None)


class AttachmentPicker(ModalScreen[str | None]):
    """Pick one of the files known here (its id), those of `room` first."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = _MODAL_CSS.format(name="AttachmentPicker")

    def __init__(self, files: list[dict[str, Any]], room: str | None = None) -> None:
        super().__init__()
        # the room's own files first (their readers were sent them), newest first in each part
        self.files = sorted(files, key=lambda f: f["conv_id"] != room)

    def compose(self) -> ComposeResult:
        with Vertical():
            if not self.files:
                yield Label("No files here yet: send one to the room first (u in the room).")
                return
            yield Label("Link which file? (files of this note's room first)")
            yield OptionList(
                *(
                    Option(
                        f"{escape(f['name'])}  ({human_size(f['size'])}, {f['state']})",
                        f["file_id"],
                    )
                    for f in self.files
                ),
                id="picker-files",
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AttachmentScreen(ModalScreen[None]):
    """One file: what it is, how far it has come, and what can be done with it."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("f", "fetch", "Fetch"),
        Binding("s", "save", "Save as…"),
    ]
    DEFAULT_CSS = _MODAL_CSS.format(name="AttachmentScreen")

    def __init__(self, session: Session, file: dict[str, Any]) -> None:
        super().__init__()
        self.session = session
        self.file = file
        self.drawn: Widget | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="attachment-title")
            yield Static("", id="attachment-state")
            yield Label("[dim]f fetch   s save as…   Escape close[/]")

    def on_mount(self) -> None:
        self._show()
        self.set_interval(POLL_EVERY, self._look)

    def _look(self) -> None:
        try:
            self.file = self.session.file(self.file["file_id"])
        except MeshError:  # dropped meanwhile: show what was last known
            return
        self._show()

    def _show(self) -> None:
        file = self.file
        self.query_one("#attachment-title", Label).update(
            f"[b]{escape(file['name'])}[/]  {human_size(file['size'])}, {escape(file['mime'])}"
        )
        state = attachment_text(file, draws=can_draw())
        if file["state"] == "fetching":
            state += "\n" + progress_line(file)
        self.query_one("#attachment-state", Static).update(escape(state))
        if self.drawn is None and can_draw():
            data = self.session.picture_of(file, PREVIEW_MAX)
            self.drawn = None if data is None else picture(data)
            if self.drawn is not None:
                self.query_one(Vertical).mount(self.drawn, before=2)

    def action_fetch(self) -> None:
        if self.file["state"] == "complete":
            self.app.notify(f"{self.file['name']} is here already: s saves it")
            return
        try:
            self.file = self.session.fetch_file(self.file["file_id"])
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self._show()

    def action_save(self) -> None:
        if self.file["state"] != "complete":
            self.app.notify("not here yet: f fetches it", severity="warning")
            return

        def save(out: str | None) -> None:
            if out:
                self.run_worker(self._save(Path(out).expanduser()))

        self.app.push_screen(Prompt("Save to which file or directory?", "e.g. ~/Downloads"), save)

    async def _save(self, out: Path) -> None:
        try:
            saved = await self.session.save_file(self.file["file_id"], out)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"saved {saved['path']}", title="File saved")

    def action_close(self) -> None:
        self.dismiss(None)


def open_attachment(app: App[Any], session: Session, file: str) -> bool:
    """Show a file known here by its id or prefix; False, with a notice, if it is not known
    (a link from a note to a file sent in a conversation you are not in)."""
    try:
        shown = session.file(file)
    except MeshError as exc:
        app.notify(
            f"{exc}: only members of the conversation it was sent in can open it",
            severity="warning",
        )
        return False
    app.push_screen(AttachmentScreen(session, shown))
    return True
