"""The UI attached to a running headless node (issue 20): the node runs on when the UI quits.

Two real node processes, A and B (``meshnotes run --headless``); the app runs
here on A's home through :class:`tui.attached.AttachedSession`, as ``meshnotes``
does when A's node answers on its control socket.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crdt.note import Note
from mesh.runtime import control
from mesh.runtime.home import Home
from tests.integration.harness import Mesh
from tests.integration.test_cli_line import Line, meshnotes
from tests.waiting import wait_until
from tui.app import MeshnotesApp
from tui.attached import AttachedSession
from tui.cli import main
from tui.main_screen import MainScreen
from tui.session import Session
from tui.verbs import node as node_verbs
from tui.verbs.offline import OfflineReader
from tui.widgets.chat_view import ChatView
from tui.widgets.note_view import NoteView


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Line]:
    line = Line(tmp_path)
    line.start("AB")  # B dials A
    yield line
    line.stop()


async def cli(*args: str) -> str:
    result = await asyncio.to_thread(meshnotes, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def texts(home: Path, conversation: str) -> list[str]:
    """A conversation's messages as the home's database holds them (read while the node runs)."""
    return [m["text"] for m in OfflineReader(Home(home)).history(conversation, 50)]


async def test_the_ui_attaches_sends_quits_and_the_node_still_delivers(pair: Line) -> None:
    a, b = pair.homes["A"], pair.homes["B"]
    session = AttachedSession(Home(a))
    app = MeshnotesApp(session)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await wait_until(
            lambda: pair.ids["B"] in {r["dest"] for r in session.status().get("routes", [])},
            what="the node's status (polled by the UI) to show B reachable",
        )
        screen.open("dm", session.direct_conversation(pair.ids["B"]))
        await pilot.pause()
        await pilot.press(*"hello from the UI", "enter")
        await wait_until(
            lambda: texts(b, pair.ids["A"]) == ["hello from the UI"],
            timeout=20,
            what="B's node to store the message the attached UI sent",
        )
        # B answers: the UI hears it live, from the node's event stream
        await cli("--home", str(b), "dm", pair.ids["A"], "hi, attached UI")
        view = screen.query_one(ChatView)
        await wait_until(
            lambda: "hi, attached UI" in [line.message["text"] for line in view.lines.values()],
            timeout=20,
            what="B's answer on the attached UI's screen",
        )
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.error is None
    assert app.return_code == 0
    assert pair.procs["A"].poll() is None, "quitting the UI stopped the node"
    # the node still delivers, both ways
    await cli("--home", str(b), "dm", pair.ids["A"], "after the UI quit")
    await cli("--home", str(a), "dm", pair.ids["B"], "the node answers alone")
    await wait_until(
        lambda: "after the UI quit" in texts(a, pair.ids["B"]), timeout=20, what="A receives"
    )
    await wait_until(
        lambda: "the node answers alone" in texts(b, pair.ids["A"]), timeout=20, what="B receives"
    )


async def test_a_note_edited_in_the_attached_ui_meets_edits_from_the_mesh(pair: Line) -> None:
    a, b = pair.homes["A"], pair.homes["B"]
    # B takes invitations from A at once
    await cli("--home", str(b), "contacts", "add", pair.ids["A"], "--name", "alice")
    session = AttachedSession(Home(a))
    app = MeshnotesApp(session)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        room = session.new_room("team")
        session.invite(room, pair.ids["B"])
        await wait_until(
            lambda: len(session.room_state(room).members) == 2,
            timeout=20,
            what="B's join, read by the UI from A's database",
        )
        note_id = session.new_note(room, "plan")
        screen.open("note", note_id)
        await pilot.pause()
        await pilot.click("#note-editor")
        await pilot.press(*"ship it")

        async def b_has(text: str) -> bool:
            out = await cli("--home", str(b), "note", "cat", note_id)
            return text in out

        for _ in range(100):  # B's node gets the UI's edit through A's node
            if await b_has("ship it"):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("B never got the attached UI's edit")
        await cli("--home", str(b), "note", "append", note_id, "tests first")
        editor = screen.query_one(NoteView).query_one("#note-editor")
        await wait_until(
            lambda: "tests first" in editor.text,  # type: ignore[attr-defined]
            timeout=20,
            what="B's edit in the attached UI's editor, live",
        )
        await pilot.press("end", *" (done)")
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.return_code == 0 and app.error is None
    assert pair.procs["A"].poll() is None
    text = await cli("--home", str(a), "note", "cat", note_id)
    assert text.splitlines() == ["ship it", "tests first (done)"]


async def test_the_ui_says_so_and_exits_when_its_node_stops(pair: Line) -> None:
    app = MeshnotesApp(AttachedSession(Home(pair.homes["A"])))
    async with app.run_test(size=(120, 36)) as pilot:
        pair.stop_one("A")
        await wait_until(lambda: app.return_code is not None, timeout=20, what="the app to exit")
        await pilot.pause()
    assert app.return_code == 1
    assert app.error == f"the node for {pair.homes['A']} stopped"


def test_meshnotes_on_a_home_whose_node_runs_attaches_to_it(
    pair: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Session] = []

    def run_app(session: Session, bell: bool = True) -> int:
        opened.append(session)
        assert bell is True  # the default of the `bell` setting
        return 0

    monkeypatch.setattr(node_verbs, "_run_app", run_app)
    assert main(["--home", str(pair.homes["A"])]) == 0
    session = opened[0]
    assert isinstance(session, AttachedSession)
    session.store.close()


async def test_the_attached_ui_edits_reacts_searches_and_marks_read_through_the_node(
    pair: Line,
) -> None:
    a, b = pair.homes["A"], pair.homes["B"]
    sent = (await cli("--home", str(b), "dm", pair.ids["A"], "@A the plan is ready")).strip()
    session = AttachedSession(Home(a))
    app = MeshnotesApp(session)
    async with app.run_test(size=(120, 36)) as pilot:
        conv = session.direct_conversation(pair.ids["B"])
        await wait_until(lambda: conv in session.unread(), timeout=20, what="B's message at A")
        assert session.unread()[conv] == {"unread": 1, "mentions": 1}
        assert [r["id"] for r in session.search("plan")] == [sent]
        mine = session.send_direct(pair.ids["B"], "thanks")
        session.edit(mine, "thanks a lot")
        assert session.react(sent, "🎉")["on"] is True
        session.mark_read(conv)
        assert session.unread() == {}
        await wait_until(
            lambda: "thanks a lot" in texts(b, pair.ids["A"]), timeout=20, what="the edit at B"
        )
        at_b = OfflineReader(Home(b)).history(pair.ids["A"], 50)
        assert [(m["text"], m["edited"], m["reactions"]) for m in at_b] == [
            ("@A the plan is ready", False, {"🎉": 1}),
            ("thanks a lot", True, {}),
        ]
        await pilot.press("ctrl+q")
        await pilot.pause()


async def test_an_attached_session_cut_off_for_falling_behind_subscribes_again(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of events the stream cannot drain at once cuts it off; the session comes back
    (and reads again what its open notes missed) instead of saying its node stopped."""
    daemon = await mesh.start("A")
    room = daemon.chat.rooms.new("team")
    notes = mesh.notes_of("A")
    note_id = notes.new(room, "plan")
    session = AttachedSession(Home(mesh.root / "A"))
    heard: list[tuple[str, str]] = []
    session.listeners.append(lambda source, kind, data: heard.append((source, kind)))
    await session.start()
    try:
        # open_note's blocking call would wait on this very loop (the node runs in it here):
        # an empty copy, followed, as open_note leaves it
        copy = Note()
        session._open[note_id] = copy
        session._follow({note_id})
        monkeypatch.setattr(control, "MAX_QUEUED", 5)
        for n in range(20):  # in one turn of the node's loop: the queue overruns
            daemon.control.publish("chat", "burst", {"n": n})
        notes.append(note_id, "written while cut off")  # its update is lost with the stream
        await wait_until(
            lambda: copy.text == "written while cut off", what="the copy caught up again"
        )
        daemon.control.publish("chat", "after", {})
        await wait_until(lambda: ("chat", "after") in heard, what="events flow again")
        assert ("session", "stopped") not in heard
        assert daemon.status()["counters"]["control_events_overrun"] == 1
    finally:
        await session.stop()


async def test_the_attached_ui_lists_fetches_and_saves_files_through_the_node(
    pair: Line, tmp_path: Path
) -> None:
    a, b = pair.homes["A"], pair.homes["B"]
    data = os.urandom(100_000)
    (tmp_path / "sheet.ods").write_bytes(data)
    sent = json.loads(
        await cli(
            "--home", str(b), "send-file", pair.ids["A"], str(tmp_path / "sheet.ods"), "--json"
        )
    )
    session = AttachedSession(Home(a))
    app = MeshnotesApp(session)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(
            lambda: [f["state"] for f in session.files()] == ["complete"],
            timeout=30,
            what="A's node fetches the small file on its own",
        )
        shown = session.file(sent["file_id"][:10])
        assert (shown["name"], shown["size"]) == ("sheet.ods", 100_000)
        assert session.fetch_file(sent["file_id"])["state"] == "complete"  # kept: nothing to do
        saved = await session.save_file(sent["file_id"], tmp_path / "out.ods")
        assert Path(saved["path"]).read_bytes() == data
        await pilot.press("ctrl+q")
        await pilot.pause()
