"""Tests for sim/engine.py: shared signature verdicts are the ones routers would reach."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mesh.routing.router import Close, Deliver, RouterConfig, Send
from mesh.wire.envelope import DestKind, EnvelopeType
from sim.engine import Graph, Sim, play_parts


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


def _pair() -> Sim:
    sim = Sim(Graph(3, [(0, 1), (1, 2)]), RouterConfig(), seed=4)
    sim.connect_all(quiet=True)
    return sim


def test_parts_deliver_across_their_border_and_a_close_reaches_the_far_part() -> None:
    sim = _pair()
    owner = [0, 0, 1]  # edge (1, 2) crosses from part 0 to part 1
    recipient = sim.routers[2].identity.public_key

    def play(part: int, peers: dict[int, Any]) -> dict[str, Any]:
        sim.partition(owner, part)
        sim.start_ticks()
        delivered: list[bytes] = []
        sim.on_deliver = lambda node, d: delivered.append(d.envelope.payload)
        if part == 0:
            envelope = sim.routers[0].make(
                EnvelopeType.DATA, sim.now, dest_kind=DestKind.PEER, dest=recipient, payload=b"hi"
            )
            sim.at(sim.now + 0.5, lambda: sim.originate(0, envelope))
            sim.at(sim.now + 2.0, lambda: sim.execute(1, [Close(2, "test")]))  # node 1's end
        sim.run_part(sim.now + 5.0, peers)
        return {
            "delivered": delivered,
            "up": sim.up[1],
            "links": [sorted(sim.routers[i].links) for i in range(3) if sim.mine(i)],
        }

    first, second = play_parts(2, play)
    assert first["delivered"] == [] and second["delivered"] == [b"hi"]
    assert not first["up"] and not second["up"]  # the far part heard of the close
    assert first["links"] == [[0], [1]] and second["links"] == [[]]


def test_a_part_that_fails_reports_its_traceback_and_the_others_stop() -> None:
    sim = _pair()

    def play(part: int, peers: dict[int, Any]) -> None:
        sim.partition([0, 0, 1], part)
        if part == 1:
            raise ValueError("broken part")
        sim.start_ticks()
        sim.run_part(sim.now + 5.0, peers)

    with pytest.raises(RuntimeError, match="broken part"):
        play_parts(2, play)
