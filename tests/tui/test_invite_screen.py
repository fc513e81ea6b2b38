"""The UI's "share my contact" and "add contact from invite", under Pilot on real peers."""

from __future__ import annotations

import time

from textual.widgets import Input, Static

from mesh.wire.invite import Invite
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tests.waiting import wait_until
from tui.app import MeshnotesApp
from tui.invite_screen import InviteScreen
from tui.main_screen import MainScreen


def linked(mesh: Mesh, name: str, other: str) -> bool:
    return mesh.ids[other] in {link["peer_id"] for link in mesh[name].node.status()["links"]}


async def test_share_my_contact_shows_the_signed_code_and_its_qr(mesh: Mesh) -> None:
    await mesh.start("A")
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("s")
        await wait_until(lambda: isinstance(app.screen, InviteScreen), what="the invite dialog")
        await pilot.pause()
        code = str(app.screen.query_one("#invite-code", Static).render())
        invite = Invite.decode(code, time.time())
        assert invite.peer_id == mesh.ids["A"] and invite.name == "A"
        assert [str(a) for a in invite.peer_addresses()] == [mesh.addresses["A"]]
        qr = str(app.screen.query_one("#invite-qr", Static).render()).splitlines()
        assert len(qr) >= 20 and "█" in qr[0]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)


async def test_add_contact_from_invite_adds_and_dials_and_refuses_a_tampered_code(
    mesh: Mesh,
) -> None:
    await mesh.start("A")
    await mesh.start("B")  # not linked to A
    code = (await mesh["A"].make_invite())["invite"]
    app = MeshnotesApp(session_of(mesh, "B"), own_session=False)
    async with app.run_test(size=(120, 36)) as pilot:
        tampered = code[:-10] + ("a" if code[-10] != "a" else "b") + code[-9:]
        await pilot.press("a")
        await pilot.pause()
        app.screen.query_one("#prompt-input", Input).value = tampered
        await pilot.press("enter")
        await pilot.pause()
        assert any("altered or damaged" in n.message for n in app._notifications)
        assert mesh["B"].chat.contacts.all() == []

        await pilot.press("a")
        await pilot.pause()
        app.screen.query_one("#prompt-input", Input).value = code
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("enter")  # the nickname asked: keep the name the invite gives
        await pilot.pause()
        assert any(n.message == "added A; dialing it" for n in app._notifications)
        contacts = mesh["B"].chat.contacts.all()
        assert [(c["peer_id"], c["name"]) for c in contacts] == [(mesh.ids["A"], "A")]
        await wait_until(lambda: linked(mesh, "B", "A"), what="B dials A from the invite")
        assert isinstance(app.screen, MainScreen)


async def test_both_actions_are_in_the_command_palette(mesh: Mesh) -> None:
    await mesh.start("A")
    app = MeshnotesApp(session_of(mesh, "A"), own_session=False)
    async with app.run_test(size=(120, 36)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Share my contact" in titles and "Add contact from invite" in titles
