"""Attachments in the UI, under Pilot, on real peers A - B: the send key with a pasted path,
the message shown as a file or a picture placeholder, and a fetch's progress in the status bar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.harness import Mesh
from tests.tui.test_app import line as line  # the fixture: A - B - C, carol and alice
from tests.tui.test_app import session_of
from tests.waiting import wait_until
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.widgets.chat_view import ChatView
from tui.widgets.status_bar import StatusBar


def kept(mesh: Mesh, name: str, file_id: str) -> bool:
    row = mesh[name].files.holdings.row(file_id)
    return row is not None and row["state"] == "complete"


async def test_u_sends_a_file_and_its_message_shows_a_picture_placeholder(
    line: Mesh, tmp_path: Path
) -> None:
    a, c = line["A"], line["C"]
    await wait_until(lambda: a.node.router.route_to(c.node.identity.public_key, a.node.clock()))
    picture = tmp_path / "cat.png"
    picture.write_bytes(os.urandom(150_000))
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(140, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("dm", a.chat.direct_conversation("carol"))
        await pilot.pause()
        screen.set_focus(None)  # the screen's keys, not the message box's
        await pilot.press("u")
        await pilot.pause()
        await pilot.press(*str(picture), "enter")
        await wait_until(lambda: a.files.list(), what="A sent the file")
        file_id = a.files.list()[0]["file_id"]
        await wait_until(lambda: kept(line, "C", file_id), what="C fetched it")
        view = screen.query_one(ChatView)
        await wait_until(lambda: view.lines, what="the message on screen")
        shown = str(next(iter(view.lines.values())).render())
        assert "picture: cat.png (146.5 KiB)" in shown
        assert "no preview in this terminal" in shown
    on_c = [m for m in c.chat.history("alice") if m["text"].startswith("[file] cat.png")]
    assert len(on_c) == 1


async def test_a_fetch_under_way_shows_in_the_status_bar_until_it_is_complete(
    line: Mesh,
) -> None:
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(200, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        session = screen.session
        progress = {
            "file_id": "ab" * 32,
            "name": "video.mp4",
            "size": 10 * 1024 * 1024,
            "state": "fetching",
            "have_bytes": 5 * 1024 * 1024,
            "rate": 1024 * 1024,
            "eta_s": 5.0,
            "msg_id": None,
        }
        session.emit("files", "file_progress", progress)
        await pilot.pause()
        bar = screen.query_one(StatusBar)
        assert "video.mp4: 50% of 10.0 MiB, 1.0 MiB/s, 5 s left" in str(bar.render())
        session.emit("files", "file_complete", {**progress, "state": "complete"})
        await pilot.pause()
        assert "video.mp4" not in str(bar.render())


async def test_where_the_terminal_draws_pictures_a_picture_shows_under_its_message(
    line: Mesh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    import tui.widgets.picture

    # Pilot's terminal answers no graphics protocol: draw as a Kitty or Sixel terminal would
    tui.widgets.picture.can_draw()  # (once asked: the answer is not asked again)
    monkeypatch.setattr(tui.widgets.picture, "DRAWS", True)
    a = line["A"]
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "fake.png").write_bytes(os.urandom(5000))  # named a picture, is none
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("dm", a.chat.direct_conversation("carol"))
        await pilot.pause()
        for name in ("red.png", "fake.png"):
            await a.files.send("carol", str(tmp_path / name))
        view = screen.query_one(ChatView)
        await wait_until(lambda: len(view.lines) == 2, what="both messages on screen")
        await wait_until(lambda: view.pictures, what="the picture drawn")
        by_name = {f["name"]: f["msg_id"] for f in a.files.list()}
        assert set(view.pictures) == {by_name["red.png"]}  # the fake one keeps its line only
        shown = str(view.lines[by_name["red.png"]].render())
        assert "picture: red.png" in shown and "no preview" not in shown
        picture = view.pictures[by_name["red.png"]]
        # right under its message: after the block of messages that the message ends
        line = view.lines[by_name["red.png"]]
        assert line.block is not None and line.block.lines[-1] is line
        assert picture.parent is not None
        shown_in_order = list(picture.parent.children)
        assert shown_in_order[shown_in_order.index(line.block) + 1] is picture


def test_a_progress_line_starts_with_a_bar_in_eighths_of_a_character() -> None:
    from tui.widgets.format import bar, progress_line

    assert bar(0, 80) == "▕" + " " * 10 + "▏"
    assert bar(45, 100) == "▕████▌     ▏"  # 4.5 of 10 characters
    assert bar(80, 80) == bar(90, 80) == "▕" + "█" * 10 + "▏"
    shown = {"name": "v.mp4", "size": 2048, "have_bytes": 1024, "state": "fetching", "rate": 512,
              "holders": 1}  # fmt: skip
    assert progress_line(shown) == "▕█████     ▏ v.mp4: 50% of 2.0 KiB, 512 B/s"
    assert progress_line(shown, with_bar=False) == "v.mp4: 50% of 2.0 KiB, 512 B/s"
