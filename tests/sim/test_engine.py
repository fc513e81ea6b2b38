"""Tests for sim/engine.py: shared signature verdicts are the ones routers would reach."""

from __future__ import annotations

import random

import pytest

from mesh.routing.router import Deliver, RouterConfig, Send
from mesh.wire.envelope import DestKind, EnvelopeType
from sim.engine import Sim
from sim.graph import Graph


@pytest.mark.parametrize("share", [True, False])
def test_a_forged_copy_is_rejected_and_the_genuine_one_delivered(share: bool) -> None:
    sim = Sim(Graph(2, [(0, 1)]), RouterConfig(), seed=1, share_signature_checks=share)
    sim.connect_all(quiet=True)
    delivered: list[Deliver] = []
    sim.on_deliver = lambda node, d: delivered.append(d)
    sender, receiver = sim.routers
    envelope = sender.make(
        EnvelopeType.DATA,
        sim.now,
        dest_kind=DestKind.PEER,
        dest=receiver.identity.public_key,
        payload=b"genuine",
    )
    good = envelope.encode()
    forged = good[:-1] + bytes([good[-1] ^ 0x01])  # same signed part, broken signature
    sim.execute(0, [Send(0, forged), Send(0, good)])  # link 0 is node 0's end of edge 0
    sim.run_until(sim.now + 1.0)

    assert receiver.counters.get("dropped_bad_signature") == 1
    assert [d.envelope.payload for d in delivered] == [b"genuine"]


def test_a_warm_start_leaves_the_tables_a_converged_announce_round_would() -> None:
    graph = Graph.random(40, 4.0, random.Random(3))
    config = RouterConfig(announce_interval=1000.0, route_ttl=2000.0)
    warm = Sim(graph, config, seed=2)
    warm.connect_all(quiet=True)
    for router in warm.routers:
        router.tick(warm.now)  # makes the announce the warm start stores
    warm.seed_routes()

    hops = [graph.distances(v) for v in range(graph.n)]  # hops[a][b]: a to b
    for u, w in enumerate(warm.routers):
        expected = {warm.routers[v].identity.public_key: hops[u][v] for v in range(graph.n)}
        del expected[w.identity.public_key]
        assert {k: r.hops for k, r in w.routes.items()} == expected  # shortest paths
        neighbour = {link: warm.index[st.peer] for link, st in w.links.items()}
        for key, route in w.routes.items():
            dest = warm.index[key]
            assert hops[neighbour[route.link]][dest] == route.hops - 1
            if route.alt is not None:
                assert route.alt != route.link
                assert hops[neighbour[route.alt]][dest] == route.hops - 1
            # the neighbours that pass u the round's announce from no farther than u
            near = {link for link, st in w.links.items() if st.bit & route.near}
            assert near == {k for k, v in neighbour.items() if hops[v][dest] <= route.hops}
            # the destination's announce, at the hop count it would arrive with, seen
            announce = warm.routers[dest].last_announce
            assert (
                announce is not None and route.announce == announce.with_hops(route.hops).encode()
            )
            assert w.seen.seen(announce.message_id, w.now)
