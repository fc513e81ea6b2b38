"""Scroll-back in the chat view, under Pilot: a room opens on its last page; scrolling to
the top, or ↑ on the first message, shows the page before, until the first message."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from textual.pilot import Pilot

from tests.conftest import wait_until
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.widgets.chat_view import PAGE, ChatView
from tui.widgets.message_line import MessageList

COUNT = 2 * PAGE + 30


async def long_room(mesh: Mesh) -> tuple[str, list[str]]:
    """A room of A's with COUNT messages, as if received; (its id, their ids in order)."""
    daemon = await mesh.start("A")
    room = daemon.chat.rooms.new("team")
    store = daemon.chat.store
    with store.atomic():
        for i in range(COUNT):
            store.execute(
                "INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status,"
                " stored_at, epoch, idx) VALUES (?, ?, ?, ?, ?, ?, 'received', 0, 0, ?)",
                (f"{i:064x}", room, mesh.ids["A"], f"message {i}", 1_700_000_000_000 + i, i, i),
            )
    return room, [m["id"] for m in daemon.chat.history(room, COUNT)]


@contextlib.asynccontextmanager
async def opened(mesh: Mesh, room: str) -> AsyncIterator[tuple[Pilot[None], ChatView, MessageList]]:
    """A's UI with `room` open."""
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("room", room)
        await pilot.pause()
        view = screen.query_one(ChatView)
        yield pilot, view, view.query_one(MessageList)


async def test_scrolling_up_pages_back_through_the_whole_history(mesh: Mesh) -> None:
    room, everything = await long_room(mesh)
    async with opened(mesh, room) as (pilot, view, messages):
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


async def test_a_page_comes_with_the_scroll_to_the_top_and_keeps_the_top_message_in_place(
    mesh: Mesh,
) -> None:
    room, everything = await long_room(mesh)
    async with opened(mesh, room) as (pilot, view, messages):
        for pages in (2, 3):
            top = next(iter(view.lines))  # the first message: at the top once scrolled there
            messages.scroll_home(animate=False, immediate=True)
            # in the same turn, before any frame could show the top without it
            assert list(view.lines) == everything[-pages * PAGE :]
            assert messages.scroll_y > 0
            line = view.lines[top]
            assert line.block is not None and line.block is not messages.children[0]
            await wait_until(
                lambda: messages.children[0].region.height > 0, what="the page laid out"
            )
            # the message that was at the top is still there: the page is above it
            row, _ = line.block.row_span(top)
            assert line.block.virtual_region.y + row == messages.scroll_y
            assert messages.children[0].virtual_region.height == messages.scroll_y
            await pilot.pause()
