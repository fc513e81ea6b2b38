"""Real nodes with an announce radius: far paths asked for, room members announced widely."""

from __future__ import annotations

from dataclasses import replace

from mesh.routing.router import room_routing
from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with
from tests.integration.test_chat import has

RADIUS_1 = replace(room_routing("auto"), announce_radius=1)


async def test_a_message_finds_its_far_recipient_by_asking(mesh: Mesh) -> None:
    # five in a line: E's address records (hop limit 3) do not reach A either
    a, _b, _c, d, e = await mesh.line("A", "B", "C", "D", "E", router=RADIUS_1)
    key_e = e.node.identity.public_key
    await wait_until(
        lambda: d.node.router.route_to(key_e, d.node.clock()) is not None, what="D next to E"
    )
    assert a.node.router.route_to(key_e, a.node.clock()) is None  # E's announces stop at D
    a.chat.send_direct(mesh.ids["E"], "far away")
    await wait_until(has(e, mesh.ids["A"], "far away", "received"), what="E receives it")
    await wait_until(has(a, mesh.ids["E"], "far away", "delivered"), what="E's receipt at A")
    counters = a.node.router.counters
    assert counters["path_requests_sent"] >= 1 and counters["paths_found"] >= 1
    route = a.node.router.route_to(key_e, a.node.clock())
    assert route is not None and route.hops == 4
    status = a.node.status()
    assert status["counters"]["paths_found"] >= 1
    assert status["announces"] == {"radius": 1, "across_the_mesh": False}


async def test_room_members_announce_across_the_mesh(mesh: Mesh) -> None:
    a, b, c, d = await mesh.line("A", "B", "C", "D", router=RADIUS_1)
    key_a = a.node.identity.public_key
    assert c.node.router.route_to(key_a, c.node.clock()) is None
    room = await room_with(mesh, "A", ["D"])
    # within a look or two (every 10 s) A and D are members: their announces cross the mesh
    # (C had only paths learned from traffic to A, the room's invitations: no announce)
    await wait_until(
        lambda: (
            (route := c.node.router.route_to(key_a, c.node.clock())) is not None
            and route.announce is not None
        ),
        timeout=40,
        what="C's path to A from A's wide announce",
    )
    assert a.node.router.last_announce is not None
    assert a.node.router.last_announce.hop_limit == 8
    assert b.node.router.last_announce is not None
    assert b.node.router.last_announce.hop_limit == 1  # B is in no room
    assert a.node.status()["announces"] == {"radius": 1, "across_the_mesh": True}
    d.chat.say(room, "hello room")
    await wait_until(has(a, room, "hello room", "received"), what="the room message at A")
