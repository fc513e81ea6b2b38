"""The chat features of issue 22 in the UI, under Pilot, on real peers in a line A - B - C:
the search box, keys on a picked message (reply, edit, delete, react, go to the answered
one), unread badges kept across UI restarts, and mention notifications with the bell."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from textual.widgets import Input, OptionList

from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tests.waiting import wait_until
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.search_screen import SearchScreen
from tui.widgets.chat_view import ChatView
from tui.widgets.message_line import MessageList
from tui.widgets.sidebar import Sidebar


@pytest.fixture
async def line(mesh: Mesh) -> AsyncIterator[Mesh]:
    await mesh.line("A", "B", "C")
    mesh["A"].chat.contacts.add(mesh.ids["C"], "carol")
    mesh["C"].chat.contacts.add(mesh.ids["A"], "alice")
    a = mesh["A"]
    await wait_until(lambda: a.node.router.route_to(mesh["C"].node.identity.public_key, 0.0))
    yield mesh


def at_c(line: Mesh, msg_id: str) -> dict[str, Any] | None:
    return next((m for m in line["C"].chat.history("alice") if m["id"] == msg_id), None)


async def test_the_search_box_opens_the_message_in_its_conversation(line: Mesh) -> None:
    a = line["A"]
    target = a.chat.send_direct("carol", "the wifi password is on the fridge")
    for i in range(250):  # more than the view loads: the jump must load around the target
        a.chat.store.execute(
            "INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status, stored_at,"
            " epoch, idx) VALUES (?, ?, ?, ?, ?, ?, 'delivered', 0, 0, ?)",
            (
                f"{i:032x}",
                a.chat.resolve_conversation("carol"),
                line.ids["A"],
                f"filler {i}",
                2**40 + i,
                10_000 + i,
                10_000 + i,
            ),
        )
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await pilot.press("ctrl+f")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        await pilot.press(*"fridge", "enter")
        await pilot.pause()
        results = app.screen.query_one(OptionList)
        assert results.option_count == 1
        await pilot.press("enter")
        await pilot.pause()
        view = screen.query_one(ChatView)
        assert screen.current == ("dm", a.chat.resolve_conversation("carol"))
        assert view.selected == target
        assert "selected" in view.lines[target].classes


async def test_keys_reply_edit_react_and_delete_the_picked_message(line: Mesh) -> None:
    a, c = line["A"], line["C"]
    theirs = c.chat.send_direct("alice", "lunch at noon?")
    await wait_until(lambda: a.chat.history("carol"), what="carol's message at A")
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.open("dm", a.chat.resolve_conversation("carol"))
        await pilot.pause()
        view = screen.query_one(ChatView)
        await pilot.press("ctrl+up")  # from the input to the messages: the last one is picked
        await pilot.pause()
        assert view.selected == theirs
        await pilot.press("r", *"yes!", "enter")
        await wait_until(lambda: len(c.chat.history("alice")) == 2, what="the reply at C")
        reply = c.chat.history("alice")[1]
        assert (reply["text"], reply["reply_to"]) == ("yes!", theirs)
        await pilot.pause()
        assert "↳ carol: lunch at noon?" in str(view.lines[reply["id"]].render())

        await pilot.press("ctrl+up", "e")  # edit my reply (the last message)
        await pilot.pause()
        box = view.query_one("#chat-input", Input)
        assert box.value == "yes!"
        await pilot.press("backspace", *" then", "enter")
        await wait_until(
            lambda: (at_c(line, reply["id"]) or {}).get("text") == "yes then",
            what="the edit at C",
        )
        await pilot.pause()
        assert "(edited)" in str(view.lines[reply["id"]].render())

        await pilot.press("ctrl+up", "up", "plus")  # react to carol's question
        await pilot.pause()
        await pilot.press("enter")  # the prompt offers 👍
        await wait_until(
            lambda: (at_c(line, theirs) or {}).get("reactions") == {"👍": 1},
            what="the reaction at C",
        )
        await pilot.press("up", "e", "x")  # carol's message is not mine: both refused
        await pilot.pause()
        refused = [
            str(n.message) for n in app._notifications if "only its author" in str(n.message)
        ]
        assert len(refused) == 2
        assert view.mode == ("say", None)

        await pilot.press("down", "x")  # my reply
        await pilot.pause()
        await pilot.press("y", "enter")
        await wait_until(
            lambda: (at_c(line, reply["id"]) or {}).get("deleted") is True,
            what="the delete at C",
        )
        await pilot.pause()
        assert "message deleted" in str(view.lines[reply["id"]].render())
        await pilot.press("ctrl+up", "g")  # from the deleted reply to the message it answered
        await pilot.pause()
        assert view.selected == theirs


async def test_unread_counts_survive_a_restart_and_a_mention_notifies(line: Mesh) -> None:
    a, c = line["A"], line["C"]
    conv = a.chat.resolve_conversation("carol")
    rings: list[bool] = []
    app = MeshnotesApp(session_of(line, "A"), own_session=False)
    app.bell = lambda: rings.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        c.chat.send_direct("alice", "plain one")
        c.chat.send_direct("alice", "@A are you there?")
        sidebar = screen.query_one(Sidebar)
        await wait_until(
            lambda: any("[2 @1]" in str(o.prompt) for o in sidebar.options),
            what="two unread, one mentioning A, in the sidebar",
        )
        await wait_until(lambda: rings == [True], what="the bell for the mention")
        # a notice is a message the app handles after the bell rang
        await wait_until(
            lambda: any(n.title == "You were mentioned" for n in app._notifications),
            what="the notice of the mention",
        )
    await line.stop("A")
    a = await line.start("A", dial="B")
    quiet = MeshnotesApp(session_of(line, "A"), own_session=False, bell=False)
    quiet.bell = lambda: rings.append(False)  # type: ignore[method-assign]
    async with quiet.run_test(size=(120, 36)) as pilot:
        screen = quiet.screen
        assert isinstance(screen, MainScreen)
        sidebar = screen.query_one(Sidebar)
        assert any("[2 @1]" in str(o.prompt) for o in sidebar.options)  # kept by the node
        c.chat.send_direct("alice", "@A again")
        await wait_until(
            lambda: any("[3 @2]" in str(o.prompt) for o in sidebar.options), what="counted"
        )
        await pilot.pause()
        assert rings == [True]  # bell = false in meshnotes.toml: no ring
        screen.open("dm", conv)
        await pilot.pause()
        assert a.chat.unread() == []
        assert not any("[" in str(o.prompt) for o in sidebar.options if o.id == f"dm:{conv}")
        assert isinstance(screen.query_one(MessageList), MessageList)
