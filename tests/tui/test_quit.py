"""Quitting the UI: ctrl+q after a note was opened ends cleanly (issue 20, item 1)."""

from __future__ import annotations

from pathlib import Path

from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.session import LocalSession


async def test_ctrl_q_after_editing_a_note_exits_0_and_keeps_the_edit(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    config = NodeConfig(listen=("127.0.0.1", 0), auto_connect=False)
    app = MeshnotesApp(LocalSession.for_home(home, config, name="alice"))  # owns its session
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        room = app.session.new_room("plans")
        note_id = app.session.new_note(room, "todo")
        screen.open("note", note_id)
        await pilot.pause()
        await pilot.click("#note-editor")
        await pilot.press(*"ship it")
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.error is None
    assert app.return_code == 0
    # the edit was flushed before the node stopped: a new session reads it
    again = LocalSession.for_home(home, config)
    await again.start()
    try:
        assert again.notes_layer.cat(note_id) == "ship it"
    finally:
        await again.stop()
