"""Typing notices and collaborators' cursors in the terminal UI, on real peers (A - B - C)."""

from __future__ import annotations

from textual.widgets import Static

from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with
from tests.tui.test_app import line, session_of
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.widgets.note_view import NoteView

__all__ = ["line"]  # the fixture, shared with test_app


def shown(app: MeshnotesApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_typing_shows_on_the_other_side_both_ways(line: Mesh) -> None:
    heard_at_c: list[str] = []
    line["C"].chat.listeners.append(
        lambda kind, data: heard_at_c.append(data["conv_id"]) if kind == "typing" else None
    )
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        conv = app.session.direct_conversation("carol")
        screen.open("dm", conv)
        await pilot.pause()
        assert line["C"].typing is not None
        line["C"].typing.typed(line["C"].chat.direct_conversation("alice"))
        await wait_until(
            lambda: "carol is typing…" in shown(app, "#chat-typing"), what="C typing, shown at A"
        )
        await pilot.click("#chat-input")
        await pilot.press(*"hel")
        await wait_until(lambda: heard_at_c, what="A's keystrokes heard as typing at C")
        assert heard_at_c[0] == line["C"].chat.direct_conversation("alice")
        line["C"].chat.send_direct("alice", "here it is")
        await wait_until(
            lambda: "typing" not in shown(app, "#chat-typing"), what="the message ends the notice"
        )


async def test_collaborators_cursors_show_in_the_note_view_both_ways(line: Mesh) -> None:
    room = await room_with(line, "A", ["C"])
    note_id = line.notes_of("A").new(room, "plan")
    line.notes_of("A").append(note_id, "first line\nsecond line")
    notes_c = line.notes_of("C")
    await wait_until(
        lambda: (
            note_id in {n["note_id"] for n in notes_c.all()}
            and notes_c.cat(note_id).endswith("second line")
        ),
        what="C has the note",
    )
    cursors_at_c: list[dict[str, object]] = []
    notes_c.listeners.append(
        lambda kind, data: cursors_at_c.append(data) if kind == "cursor" else None
    )
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        cursors_c = line.notes["C"].cursors
        assert cursors_c is not None
        cursors_c.set_cursor(note_id, len("first line\nsecond"))
        view = screen.query_one(NoteView)
        await wait_until(
            lambda: "line 2:7" in shown(app, "#note-presence"), what="C's cursor shown at A"
        )
        assert "carol" in shown(app, "#note-presence")
        assert view.cursors[line.ids["C"]][2] == len("first line\nsecond")
        await pilot.click("#note-editor")
        await pilot.press("ctrl+home", "right", "right")  # A's cursor after "fi"
        await wait_until(
            lambda: any(c["index"] == 2 for c in cursors_at_c), what="A's cursor seen at C"
        )


async def test_who_read_the_room_shows_under_its_last_message(line: Mesh) -> None:
    room = await room_with(line, "A", ["C"])
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("room", room)
        await pilot.pause()
        await pilot.click("#chat-input")
        await pilot.press(*"did you read this?", "enter")
        await wait_until(lambda: len(line["C"].chat.history(room)) == 1, what="C has it")
        line["C"].chat.mark_read(room)  # C's UI shows the room
        await wait_until(
            lambda: "read by carol" in shown(app, "#chat-typing"), what="C's read mark at A"
        )
