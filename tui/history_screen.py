"""A note's history: its versions, newest first, each shown as it was; r restores one."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, TextArea
from textual.widgets.option_list import Option

from mesh.errors import MeshError
from tui.session import Session


class HistoryScreen(ModalScreen[int | None]):
    """Pick a version of a note: dismissed with its number to restore, or None."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("r", "restore", "Restore this version"),
    ]
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical { width: 90%; height: 80%; border: round $accent;
                               background: $surface; padding: 0 1; }
    HistoryScreen #history-body { height: 1fr; }
    HistoryScreen #history-versions { width: 44; height: 1fr; }
    HistoryScreen #history-text { width: 1fr; height: 1fr; }
    """

    def __init__(self, session: Session, note_id: str, versions: list[dict[str, Any]]) -> None:
        super().__init__()
        self.session = session
        self.note_id = note_id
        self.versions = list(reversed(versions))  # newest first

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]History[/]  ↑ ↓ pick a version   r restore it   escape close")
            with Horizontal(id="history-body"):
                yield OptionList(*map(self._option, self.versions), id="history-versions")
                yield TextArea(id="history-text", read_only=True, soft_wrap=True)

    def _option(self, version: dict[str, Any]) -> Option:
        when = time.strftime("%m-%d %H:%M", time.localtime(version["ts"]))
        who = self.session.display_name(version["author"])
        return Option(f"{version['version']:>3}  {when}  {who}", id=str(version["version"]))

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        if self.versions:
            self.query_one(OptionList).highlighted = 0

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        version = int(event.option.id or 0)
        try:
            text = self.session.note_version(self.note_id, version)
        except MeshError as exc:
            text = f"(cannot show version {version}: {exc})"
        self.query_one("#history-text", TextArea).load_text(text)

    def action_restore(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None and self.versions:
            self.dismiss(int(self.versions[highlighted]["version"]))

    def action_close(self) -> None:
        self.dismiss(None)
