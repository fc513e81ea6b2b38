"""Attachments opened from the UI, under Pilot, on real peers: a note links a file (ctrl+l)
and opens it (ctrl+o, a click in the preview), a member fetches and saves it from there, a
reader outside the file's conversation is told it is not theirs; the file picker; `o` on a
message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DirectoryTree, Markdown, TextArea

from chat.files.links import file_link
from chat.files.service import FilesConfig
from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp
from tui.file_screens import AttachmentPicker, AttachmentScreen, FilePicker
from tui.main_screen import MainScreen
from tui.widgets.chat_view import ChatView, MessageList
from tui.widgets.note_view import NoteView


def state(mesh: Mesh, name: str, file_id: str) -> str | None:
    row = mesh[name].files.holdings.row(file_id)
    return None if row is None else str(row["state"])


async def test_a_note_links_a_file_and_a_member_opens_fetches_and_saves_it(
    mesh: Mesh, tmp_path: Path
) -> None:
    a = await mesh.start("A")
    await mesh.start("B", dial="A", files=FilesConfig(auto_download=0))
    room = await room_with(mesh, "A", ["B"])
    data = os.urandom(200_000)
    (tmp_path / "budget.xlsx").write_bytes(data)
    file_id = (await a.files.send(room, str(tmp_path / "budget.xlsx")))["file_id"]
    note_id = mesh.notes_of("A").new(room, "plan")
    await wait_until(lambda: state(mesh, "B", file_id) == "offered", what="B hears of the file")

    # A links the file into the note: ctrl+l, the room's file picked
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        await pilot.press(*"See ")
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, AttachmentPicker)
        await pilot.press("enter")
        await pilot.pause()
        editor = screen.query_one("#note-editor", TextArea)
        link = file_link("budget.xlsx", file_id)
        assert editor.text == f"See {link}"
        screen.query_one(NoteView).close()
    notes_b = mesh.notes_of("B")
    await wait_until(lambda: link in notes_b.cat(note_id), what="the link reaches B's note")

    # B opens the link at the cursor, fetches the file, and saves it
    app = MeshnotesApp(session_of(mesh, "B"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("note", note_id)
        await pilot.pause()
        editor = screen.query_one("#note-editor", TextArea)
        editor.cursor_location = (0, len("See [bud"))
        await pilot.press("ctrl+o")
        await pilot.pause()
        opened = app.screen
        assert isinstance(opened, AttachmentScreen)
        assert opened.file["file_id"] == file_id and opened.file["state"] == "offered"
        await pilot.press("f")
        await wait_until(lambda: state(mesh, "B", file_id) == "complete", what="B fetches it")
        await wait_until(lambda: opened.file["state"] == "complete", what="the screen sees it")
        await pilot.press("s")
        await pilot.pause()
        await pilot.press(*str(tmp_path / "out.xlsx"), "enter")
        await wait_until(lambda: (tmp_path / "out.xlsx").exists(), what="the file saved")
        assert (tmp_path / "out.xlsx").read_bytes() == data
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        # away from a link, ctrl+o says so and opens nothing
        editor.cursor_location = (0, 1)
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert app.screen is screen


async def test_a_link_clicked_in_the_preview_opens_it_and_an_outsider_is_told_it_is_not_theirs(
    mesh: Mesh, tmp_path: Path
) -> None:
    a = await mesh.start("A")
    await mesh.start("B", dial="A")
    await mesh.start("C", dial="A")
    secret = await room_with(mesh, "A", ["B"], name="secret")  # C is not in it
    team = await room_with(mesh, "A", ["B", "C"], name="team")
    (tmp_path / "plans.txt").write_bytes(b"the plans")
    file_id = (await a.files.send(secret, str(tmp_path / "plans.txt")))["file_id"]
    note_id = mesh.notes_of("A").new(team, "links")
    mesh.notes_of("A").append(note_id, f"# Links\n\n{file_link('plans.txt', file_id)}\n")
    await wait_until(lambda: state(mesh, "B", file_id) == "complete", what="B has the file")
    for name in ("B", "C"):
        notes = mesh.notes_of(name)
        await wait_until(lambda n=notes: file_id in n.cat(note_id), what=f"the note at {name}")

    for name, opens in (("B", True), ("C", False)):
        app = MeshnotesApp(session_of(mesh, name), own_session=False)
        async with app.run_test(size=(120, 36)) as pilot:
            screen = app.screen
            assert isinstance(screen, MainScreen)
            screen.open("note", note_id)
            await pilot.pause()
            await pilot.press("f2")
            preview = screen.query_one("#note-preview", Markdown)
            await wait_until(lambda p=preview: p.query("MarkdownH1"), what="the preview")
            preview.post_message(Markdown.LinkClicked(preview, f"meshnotes:file/{file_id}"))
            await pilot.pause()
            if opens:
                assert isinstance(app.screen, AttachmentScreen)
                assert app.screen.file["name"] == "plans.txt"
                assert app.screen.file["state"] == "complete"
            else:  # C was never sent the file: no key, no row; it is told why
                await wait_until(
                    lambda a=app: any(
                        "only members of the conversation" in n.message for n in a._notifications
                    ),
                    what="the notice",
                )
                assert app.screen is screen
    assert state(mesh, "C", file_id) is None


async def test_the_file_picker_sends_the_file_picked_in_its_tree(
    mesh: Mesh, tmp_path: Path
) -> None:
    a = await mesh.start("A")
    room = a.chat.rooms.new("team")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text("# hello\n")
    picked: list[str | None] = []
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        app.push_screen(FilePicker("Send which file?", start=folder), picked.append)
        await pilot.pause()
        tree = app.screen.query_one(DirectoryTree)
        await wait_until(lambda: tree.root.children, what="the directory read")
        tree.focus()
        tree.move_cursor(tree.root.children[0])
        await pilot.press("enter")
        await pilot.pause()
        assert picked == [str(folder / "notes.md")]
        assert app.screen is screen
        # u in a room sends what the picker gives
        screen.open("room", room)
        await pilot.pause()
        screen.set_focus(None)
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker)
        await pilot.press(*str(folder / "notes.md"), "enter")
        await wait_until(lambda: a.files.list(), what="the file sent")
    assert a.files.list()[0]["name"] == "notes.md"


async def test_o_on_a_message_opens_the_file_it_carries_with_its_picture(
    mesh: Mesh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    import tui.widgets.picture

    # Pilot's terminal answers no graphics protocol: draw as a Kitty or Sixel terminal would
    monkeypatch.setattr(tui.widgets.picture, "DRAWS", True)
    a = await mesh.start("A")
    room = a.chat.rooms.new("team")
    a.chat.say(room, "no file here")
    Image.new("RGB", (40, 30), (20, 200, 30)).save(tmp_path / "a.png")
    await a.files.send(room, str(tmp_path / "a.png"))
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("room", room)
        view = screen.query_one(ChatView)
        await wait_until(lambda: len(view.lines) == 2, what="both messages")
        with_file = next(i for i, line in view.lines.items() if "a.png" in line.message["text"])
        without = next(i for i in view.lines if i != with_file)
        view.query_one(MessageList).focus()
        view.pick(without)
        await pilot.press("o")
        await pilot.pause()
        assert app.screen is screen
        view.pick(with_file)
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, AttachmentScreen)
        assert app.screen.file["name"] == "a.png"
        assert app.screen.drawn is not None and app.screen.drawn.parent is not None
