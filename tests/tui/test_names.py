"""Names in the UI and at init (Pilot): the first start asks for a display name, adding a
contact asks for a nickname, and the peers screen shows the names peers announce."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from mesh.runtime.home import Home
from tests.conftest import wait_until
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp
from tui.cli import main
from tui.dialogs import Prompt
from tui.name_prompt import NameApp, ask_in_terminal
from tui.peers_screen import PeersScreen


async def test_the_first_start_dialog_returns_the_name_typed() -> None:
    app = NameApp(default="root")
    async with app.run_test() as pilot:
        field = app.query_one(Input)
        assert field.value == "root"  # the default offered
        field.value = "  Al\x1bice  "  # pasted with an escape: cleaned
        await pilot.press("enter")
    assert app.return_value == "Alice"


async def test_the_first_start_dialog_keeps_the_default_on_escape_or_an_empty_name() -> None:
    for keys in (["escape"], ["ctrl+u", "enter"]):
        app = NameApp(default="root")
        async with app.run_test() as pilot:
            app.query_one(Input).value = "" if keys[0] == "ctrl+u" else "ignored"
            await pilot.press(keys[-1])
        assert app.return_value == "root"


def test_init_asks_for_a_name_on_a_terminal_and_not_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("  Carol \x1b\n"))
    assert main(["--home", str(tmp_path / "a"), "init"]) == 0
    out, err = capsys.readouterr()
    assert "display name" in err and out.strip() == Home(tmp_path / "a").public_info()[0]
    assert Home(tmp_path / "a").public_info()[1] == "Carol"

    monkeypatch.setattr("sys.stdin", io.StringIO("never read\n"))  # not a terminal
    assert main(["--home", str(tmp_path / "b"), "init"]) == 0
    assert "display name" not in capsys.readouterr().err
    assert Home(tmp_path / "b").public_info()[1] == ""


def test_the_terminal_question_keeps_the_default_on_an_empty_answer() -> None:
    assert ask_in_terminal("dave", io.StringIO("\n"), io.StringIO()) == "dave"
    assert ask_in_terminal("dave", io.StringIO(""), io.StringIO()) == "dave"  # end of input


async def test_adding_a_contact_from_an_invite_asks_for_a_nickname(mesh: Mesh) -> None:
    await mesh.start("alice")
    await mesh.start("bob")
    code = (await mesh["alice"].make_invite())["invite"]
    app = MeshnotesApp(session_of(mesh, "bob"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        app.screen.query_one(Input).value = code
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, Prompt) and "Nickname" in app.screen.question
        field = app.screen.query_one(Input)
        assert field.value == "alice"  # the name the invite gives
        field.value = "ally"
        await pilot.press("enter")
        await pilot.pause()
    [contact] = mesh["bob"].chat.contacts.all()
    assert (contact["peer_id"], contact["name"]) == (mesh.ids["alice"], "ally")


async def test_the_peers_screen_names_peers_by_their_announced_name_and_asks_a_nickname(
    mesh: Mesh,
) -> None:
    await mesh.line("alice", "bob")
    alice = mesh.ids["alice"]
    bob = mesh["bob"]
    await wait_until(lambda: bob.chat.contacts.own_name_of(alice) == "alice", what="the name")
    app = MeshnotesApp(session_of(mesh, "bob"), own_session=False)
    async with app.run_test(size=(160, 36)) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PeersScreen)
        table = app.screen.query_one(DataTable)
        assert str(table.get_row(alice)[1]) == "alice"  # not the id prefix
        table.move_cursor(row=table.get_row_index(alice))
        await pilot.press("a")
        await pilot.pause()
        await pilot.press("enter")  # the selected peer, no nickname typed
        await pilot.pause()
        assert isinstance(app.screen, Prompt) and "Nickname" in app.screen.question
        field = app.screen.query_one(Input)
        assert field.value == "alice"
        field.value = "al"
        await pilot.press("enter")
        await pilot.pause()
    assert bob.chat.contacts.get(alice)["name"] == "al"
