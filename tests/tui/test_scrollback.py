"""Scroll-back in the chat view, under Pilot: a room opens on its last page; scrolling to
the top, or ↑ on the first message, shows the page before, until the first message."""

from __future__ import annotations

from tests.conftest import wait_until
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.widgets.chat_view import PAGE, ChatView
from tui.widgets.message_line import MessageList

COUNT = 2 * PAGE + 30


async def test_scrolling_up_pages_back_through_the_whole_history(mesh: Mesh) -> None:
    daemon = await mesh.start("A")
    room = daemon.chat.rooms.new("team")
    store = daemon.chat.store
    with store.atomic():  # a long history, as if received
        for i in range(COUNT):
            store.execute(
                "INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status,"
                " stored_at, epoch, idx) VALUES (?, ?, ?, ?, ?, ?, 'received', 0, 0, ?)",
                (f"{i:064x}", room, mesh.ids["A"], f"message {i}", 1_700_000_000_000 + i, i, i),
            )
    everything = [m["id"] for m in daemon.chat.history(room, COUNT)]
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("room", room)
        await pilot.pause()
        view = screen.query_one(ChatView)
        messages = view.query_one(MessageList)
        assert list(view.lines) == everything[-PAGE:]  # one page, the last
        assert len(messages.children) == 1  # the page is one widget, drawn line by line
        messages.scroll_home(animate=False)
        await wait_until(lambda: len(view.lines) == 2 * PAGE, what="the page before")
        assert list(view.lines) == everything[-2 * PAGE :]
        assert len(messages.children) == 2
        await wait_until(lambda: messages.scroll_y > 0, what="the place kept")
        # from the keyboard: ↑ on the first message shown brings the rest
        messages.focus()
        view.pick(next(iter(view.lines)))
        await pilot.press("up")
        await wait_until(lambda: len(view.lines) == COUNT, what="the first page")
        assert list(view.lines) == everything
        assert view.selected == everything[COUNT - 2 * PAGE - 1]  # the one just above
        assert not view.older
        assert view.load_older() == 0  # nothing before the first message
