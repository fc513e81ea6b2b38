"""Tests for sim/catchup.py with the product's pacing and routine inventories."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from mesh.routing.router import Deliver, RouterConfig
from mesh.runtime.catchup import REFRESH_EVERY
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from sim.catchup import CatchUp
from sim.engine import Graph, Sim

ROOM = hashlib.blake2b(b"room", digest_size=32).digest()


def delivering(
    catch_up: CatchUp, then: Callable[[int, Envelope], None] | None = None
) -> Callable[[int, Deliver], None]:
    """What a node does with a delivered envelope: answer an inventory, or keep it (and
    `then`)."""

    def on_deliver(node: int, deliver: Deliver) -> None:
        env = deliver.envelope
        if env.type == EnvelopeType.INVENTORY:
            catch_up.answer(node, deliver.link, env)
            return
        catch_up.keep(node, env)
        if then is not None:
            then(node, env)

    return on_deliver


def test_a_node_back_on_three_links_gets_its_backlog_once() -> None:
    # node 0 hangs off three neighbours, which are linked in a triangle
    graph = Graph(4, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
    sim = Sim(graph, RouterConfig(), seed=3)
    sim.connect_all(quiet=True)
    catch_up = CatchUp(sim, {0: [ROOM]})
    arrivals: dict[int, int] = {}  # seq -> copies that reached node 0

    def on_arrive(node: int, data: bytes) -> None:
        if node == 0 and data[2] == EnvelopeType.NOTE:
            seq = Envelope.decode(data).seq
            arrivals[seq] = arrivals.get(seq, 0) + 1

    sim.on_deliver, sim.on_arrive = delivering(catch_up), on_arrive
    sim.on_link_up = catch_up.link_up
    sim.leave(0)
    for seq in range(1, 6):  # node 1 writes five updates while node 0 is away
        envelope = sim.routers[1].make(
            EnvelopeType.NOTE, sim.now, dest_kind=DestKind.ROOM, dest=ROOM, payload=b"u", seq=seq
        )
        catch_up.keep(1, envelope)
        sim.originate(1, envelope)
    sim.run_until(sim.now + 1.0)
    behind = catch_up.log(0).inventory([ROOM])
    assert all(len(catch_up.log(n).missing(behind)) == 5 for n in (1, 2, 3))

    sim.rejoin(0)
    sim.run_until(sim.now + 5.0)
    assert sorted(arrivals) == [1, 2, 3, 4, 5]
    assert set(arrivals.values()) == {1}  # without pacing: once from each of the three
    assert catch_up.log(0).missing(catch_up.log(1).inventory([ROOM])) == []


def test_a_member_whose_links_stayed_up_gets_what_missed_it_by_a_routine_inventory() -> None:
    # at 20,000 nodes two members that never left missed a room envelope: every copy that
    # came near them had run out of hops. Here its hop limit stops it one link short.
    graph = Graph(3, [(0, 1), (1, 2)])
    sim = Sim(graph, RouterConfig(), seed=3)
    sim.connect_all(quiet=True)
    catch_up = CatchUp(sim, {0: [ROOM], 2: [ROOM]})
    got: list[int] = []

    def at_node_2(node: int, env: Envelope) -> None:
        if node == 2 and env.type == EnvelopeType.NOTE:
            got.append(env.seq)

    sim.on_deliver, sim.on_link_up = delivering(catch_up, at_node_2), catch_up.link_up
    start = sim.now
    catch_up.start_refresh(start, start + 100.0)
    envelope = sim.routers[0].make(
        EnvelopeType.NOTE,
        sim.now,
        dest_kind=DestKind.ROOM,
        dest=ROOM,
        payload=b"u",
        seq=1,
        hop_limit=1,
    )
    catch_up.keep(0, envelope)
    sim.originate(0, envelope)
    sim.run_until(start + 0.5)
    assert got == []  # node 1 holds it, node 2 is one link too far
    assert catch_up.log(1).missing(catch_up.log(2).inventory([ROOM])) != []
    sim.run_until(start + 2 * REFRESH_EVERY)
    assert got == [1]
    assert sim.routers[2].counters["inventories_routine"] >= 1
