"""The terminal UI under Pilot, on real peers: messages, receipts, live notes, rooms."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator

import pytest
from textual.widgets import Input, TextArea

from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with
from tui.app import MeshnotesApp
from tui.collector import NEVER, PENDING, QUIET, IdleCollector
from tui.main_screen import MainScreen
from tui.session import LocalSession
from tui.widgets.chat_view import ChatView
from tui.widgets.sidebar import Sidebar


def session_of(mesh: Mesh, name: str) -> LocalSession:
    """A session over the mesh fixture's running daemon (the fixture starts and stops it)."""
    return LocalSession(mesh[name], mesh.notes[name])


@pytest.fixture
async def line(mesh: Mesh) -> AsyncIterator[Mesh]:
    await mesh.line("A", "B", "C")
    mesh["A"].chat.contacts.add(mesh.ids["C"], "carol")
    mesh["C"].chat.contacts.add(mesh.ids["A"], "alice")
    yield mesh


def chat_texts(app: MeshnotesApp) -> list[str]:
    view = app.screen.query_one(ChatView)
    return [
        str(line.message["text"]) + "|" + line.message["status"] for line in view.lines.values()
    ]


async def test_sending_a_message_shows_it_pending_then_delivered(line: Mesh) -> None:
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("dm", app.session.direct_conversation("carol"))
        await pilot.pause()
        await pilot.click("#chat-input")
        await pilot.press(*"hi carol", "enter")
        await pilot.pause()
        assert chat_texts(app) in (["hi carol|pending"], ["hi carol|delivered"])
        await wait_until(lambda: chat_texts(app) == ["hi carol|delivered"], what="the receipt")
        await pilot.pause()
        assert "✓ delivered" in str(screen.query_one(ChatView).lines.popitem()[1].render())
    assert line["C"].chat.history(line.ids["A"])[0]["text"] == "hi carol"


async def test_a_message_arrives_live_and_counts_as_unread_elsewhere(line: Mesh) -> None:
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        conv = app.session.direct_conversation("carol")
        screen.open("dm", conv)
        await pilot.pause()
        line["C"].chat.send_direct("alice", "live from carol")
        await wait_until(lambda: "live from carol|received" in chat_texts(app), what="live message")

        screen.action_focus_sidebar()
        room = app.session.new_room("elsewhere")
        screen.open("room", room)  # now viewing something else
        await pilot.pause()
        line["C"].chat.send_direct("alice", "unread one")
        sidebar = screen.query_one(Sidebar)
        await wait_until(
            lambda: app.session.unread().get(conv, {}).get("unread") == 1,
            what="the unread count, kept by the node",
        )
        await wait_until(
            lambda: any("[1]" in str(o.prompt) for o in sidebar.options), what="the badge"
        )


async def test_typing_in_a_note_reaches_the_remote_peer(line: Mesh) -> None:
    room = await room_with(line, "A", ["C"])
    note_id = line.notes_of("A").new(room, "plan")
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        await pilot.click("#note-editor")
        await pilot.press(*"héllo wörld")
        await wait_until(
            lambda: (
                note_id in line.notes_of("C").notes
                and line.notes_of("C").cat(note_id) == "héllo wörld"
            ),
            what="C sees the typing",
        )


async def test_a_remote_edit_while_typing_keeps_the_local_cursor(line: Mesh) -> None:
    room = await room_with(line, "A", ["C"])
    notes_a, notes_c = line.notes_of("A"), line.notes_of("C")
    note_id = notes_a.new(room, "plan")
    notes_a.append(note_id, "first line\nsecond line")
    await wait_until(lambda: note_id in notes_c.notes and "second" in notes_c.cat(note_id))
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        editor = screen.query_one("#note-editor", TextArea)
        editor.focus()
        editor.move_cursor((1, 7))  # "second |line"
        await pilot.press(*"big ")
        await pilot.pause()
        assert editor.cursor_location == (1, 11)
        # carol inserts a line above, while alice is typing
        note_c = notes_c.get(note_id)
        note_c.insert(0, "carol's line\n")
        notes_c.flush(note_id)
        await wait_until(lambda: editor.text.startswith("carol's line\n"), what="remote edit")
        await pilot.pause()
        assert editor.cursor_location == (2, 11)  # same place in the same words
        await pilot.press(*"!")
        await wait_until(
            lambda: notes_c.cat(note_id) == "carol's line\nfirst line\nsecond big !line",
            what="both edits everywhere",
        )


async def test_creating_a_room_and_inviting_from_the_keyboard(line: Mesh) -> None:
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"garden", "enter")
        await pilot.pause()
        rooms = app.session.rooms()
        assert [r["name"] for r in rooms] == ["garden"]
        await pilot.press("escape", "i")
        await pilot.pause()
        assert isinstance(app.screen.query_one("#prompt-input", Input), Input)
        await pilot.press(*"carol", "enter")
        await wait_until(
            lambda: line.ids["A"] in [r["admin"] for r in line["C"].chat.rooms.all()],
            what="carol gets the invitation",
        )
        await wait_until(
            lambda: len(app.session.room_state(rooms[0]["room_id"]).members) == 2,
            what="carol joins (alice is her contact)",
        )


async def test_help_screen_lists_the_bindings(line: Mesh) -> None:
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        text = "".join(str(s.render()) for s in app.screen.query("Static"))
        for key in ("new room", "invite", "peers and contacts", "command palette"):
            assert key in text.lower()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_errors_are_shown_not_raised(line: Mesh) -> None:
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("d")
        await pilot.pause()
        await pilot.press(*"nobody-at-all", "enter")
        await pilot.pause()
        notes = [n.message for n in app._notifications]
        assert any("no contact or known peer" in m for m in notes)
        assert isinstance(app.screen, MainScreen)


async def test_full_collections_skip_what_lives_as_long_as_the_app_and_wait_for_a_pause(
    mesh: Mesh,
) -> None:
    await mesh.start("A")
    thresholds = gc.get_threshold()
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(100, 30)):
        assert isinstance(app.screen, MainScreen)
        # the main screen and all before it: not walked by the collector while the app runs
        assert gc.get_freeze_count() > 0
        assert all(widget not in gc.get_objects() for widget in (app, app.screen))
        # full passes are the app's, made when the input pauses (tui/collector.py)
        assert gc.get_threshold()[2] == NEVER
        app._collector = IdleCollector(time.monotonic() - 2 * QUIET)  # no input for a while
        for _ in range(PENDING + 1):
            gc.collect(1)
        assert gc.get_count()[2] > PENDING
        app._collect_if_due()
        assert gc.get_count()[2] == 0  # a full pass ran
    assert gc.get_freeze_count() == 0  # and collectable again once it is gone
    assert gc.get_threshold() == thresholds
