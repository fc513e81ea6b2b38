"""The one-line widgets the screen's timer refreshes (tui.widgets.status_bar,
tui.widgets.typing_line): a refresh that changes nothing lays nothing out."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult

from tui.widgets.status_bar import StatusBar
from tui.widgets.typing_line import TypingLine

ME = "ab" * 32


class FakeSession:
    """What the two lines ask of a session."""

    me = ME

    def __init__(self) -> None:
        self.links: list[str] = []

    def status(self) -> dict[str, Any]:
        return {
            "routes": [],
            "links": self.links,
            "caches": {"mailbox": {"size": 0}},
            "chat": {"outbox": 0},
        }

    def display_name(self, peer_id: str) -> str:
        return "me" if peer_id == ME else peer_id[:6]


class LinesApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.session = FakeSession()

    def compose(self) -> ComposeResult:
        yield StatusBar(self.session)  # type: ignore[arg-type]
        yield TypingLine(self.session)  # type: ignore[arg-type]


async def test_a_tick_that_changes_no_line_lays_nothing_out() -> None:
    app = LinesApp()
    async with app.run_test(size=(100, 5)) as pilot:
        bar, typing = app.query_one(StatusBar), app.query_one(TypingLine)
        bar.refresh_status()
        typing.heard({"conv_id": "c", "peer_id": "cd" * 32})
        typing.show("c")
        await pilot.pause()
        laid_out = [bar._layout_updates, typing._layout_updates]
        for _ in range(3):  # the screen's timer, with nothing new
            bar.refresh_status()
            typing.show()
        assert [bar._layout_updates, typing._layout_updates] == laid_out
        app.session.links.append("x")  # something new: it shows
        bar.refresh_status()
        await pilot.pause()
        assert "links 1" in str(bar.content) and bar._layout_updates > laid_out[0]
        assert "cdcdcd is typing" in str(typing.content)
