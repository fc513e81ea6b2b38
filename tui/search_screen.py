"""The search box: words in, matching messages out, Enter on one opens it in its conversation."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from mesh.errors import MeshError
from tui.session import Session
from tui.widgets.format import clock_time
from tui.widgets.message_line import escape


class SearchScreen(ModalScreen[tuple[str, str] | None]):
    """Search all history; dismiss with (conversation id, message id) or None (Escape)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SearchScreen { align: center middle; }
    SearchScreen > Vertical { width: 90; height: 80%; border: round $accent; padding: 1 2;
                              background: $surface; }
    SearchScreen Label { margin-bottom: 1; }
    SearchScreen OptionList { height: 1fr; }
    """

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Search every conversation (Enter searches, ↓ then Enter opens)")
            yield Input(placeholder="words; word* for a prefix", id="search-input")
            yield OptionList(id="search-results")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        results = self.query_one(OptionList)
        results.clear_options()
        try:
            found = self.session.search(event.value)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        for r in found:
            conv = self.session.conversation(r["conv"])
            where = (
                "?"
                if conv is None
                else (
                    "@" + self.session.display_name(conv["peer_id"])
                    if conv["kind"] == "dm"
                    else "#" + (conv["name"] or "")
                )
            )
            who = escape(self.session.display_name(r["author"]))
            results.add_option(
                Option(
                    f"{clock_time(r['ts'])} {escape(where)} {who}: {escape(r['text'][:70])}",
                    id=f"{r['conv']}:{r['id']}",
                )
            )
        if not found:
            self.app.notify("nothing found")
            return
        results.highlighted = 0
        results.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        conv, _, msg_id = (event.option.id or "").partition(":")
        self.dismiss((conv, msg_id))

    def action_cancel(self) -> None:
        self.dismiss(None)
