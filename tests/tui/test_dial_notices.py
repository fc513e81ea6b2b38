"""The UI tells of dials: a notification when one first fails and when it links (Pilot)."""

from __future__ import annotations

import socket

from mesh.wire.address import PeerAddress
from tests.conftest import wait_until
from tests.integration.harness import Mesh
from tests.tui.test_app import session_of
from tui.app import MeshnotesApp


def messages(app: MeshnotesApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_a_failing_dial_and_a_link_each_show_a_notification(mesh: Mesh) -> None:
    await mesh.start("alice")
    await mesh.start("bob")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = PeerAddress.parse(f"ws://127.0.0.1:{port}#{mesh.ids['bob']}")
    app = MeshnotesApp(session_of(mesh, "alice"), own_session=False)
    async with app.run_test(size=(120, 36)):
        app.session.connect(dead)
        await wait_until(lambda: any("refused" in m for m in messages(app)), what="the failure")
        failures = [m for m in messages(app) if "refused" in m]
        assert failures[0].startswith(f"{mesh.ids['bob'][:8]} at {dead}: refused")
        # the dial keeps failing; only the first failure in a row is told
        app.session.connect(PeerAddress.parse(mesh.addresses["bob"]))  # the right address
        await wait_until(lambda: any("linked to" in m for m in messages(app)), what="the link")
        assert len([m for m in messages(app) if "refused" in m]) == 1
