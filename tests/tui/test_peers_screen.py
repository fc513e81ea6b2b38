"""The peers screen lists peers found on the LAN and the dials with their state (Pilot)."""

from __future__ import annotations

import socket

from textual.widgets import DataTable

from mesh.runtime.lanpeers import Announcement
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity
from tests.conftest import wait_until
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp
from tui.peers_screen import PeersScreen


def row_of(table: DataTable[str], peer_id: str) -> list[str]:
    return [str(cell) for cell in table.get_row(peer_id)]


async def test_lan_peers_and_failing_dials_show_on_the_peers_screen(mesh: Mesh) -> None:
    await mesh.start("alice")
    app = MeshnotesApp(session_of(mesh, "alice"), own_session=False)
    node = mesh["alice"].node
    neighbour = Identity.generate("neighbour")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    absent = Identity.generate("absent")
    async with app.run_test(size=(160, 36)) as pilot:
        # a service record as mDNS would hand it over (no dial: auto-connect is off here)
        found = Announcement(neighbour.peer_id, node.lan_peers.tag, ("192.0.2.40",), 7707)
        node.lan_peers.found(found, node.clock())
        # one attempt, then given up: a state that holds still while the screen draws
        node.connect(PeerAddress.parse(f"ws://127.0.0.1:{port}#{absent.peer_id}"), attempts=1)
        await wait_until(
            lambda: any(d["state"] == "given up" for d in node.status()["dials"]),
            what="the dial to fail and give up",
        )
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PeersScreen)
        table = app.screen.query_one(DataTable)
        assert row_of(table, neighbour.peer_id)[7:9] == ["never seen", "ws://192.0.2.40:7707"]
        assert row_of(table, absent.peer_id)[9] == "given up: refused"
