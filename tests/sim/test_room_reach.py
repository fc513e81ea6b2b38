"""Room envelopes reach members beyond the fastest copy's hop limit (mesh/routing/hopmarks.py).

The cause of the lost room deliveries at 5,000 nodes in docs/scale.md: the
first copy to reach a node is the fastest, not the one over the fewest links,
and later copies were dropped as duplicates, so a copy that came the long way
ran out of hops before the members behind it.
"""

from __future__ import annotations

from dataclasses import replace

from mesh.routing.router import Deliver, RouterConfig
from mesh.wire.envelope import MAX_HOPS, DestKind, EnvelopeType
from sim.engine import Sim
from sim.graph import Graph

AUTHOR, NEAR, FAR = 0, MAX_HOPS, MAX_HOPS + 2  # nodes of the graph below
ROOM = bytes(range(32))


def _ring_with_a_tail() -> tuple[Graph, list[float]]:
    """A fast chain of MAX_HOPS links from the author to NEAR, a slow direct link between
    them, and two members behind NEAR; latencies per edge, in the graph's edge order."""
    chain = [(i, i + 1) for i in range(MAX_HOPS)]  # 0 - 1 - ... - MAX_HOPS (NEAR)
    tail = [(NEAR, NEAR + 1), (NEAR + 1, FAR)]
    graph = Graph(FAR + 1, sorted([*chain, (AUTHOR, NEAR), *tail]))
    latency = [0.2 if edge == (AUTHOR, NEAR) else 0.005 for edge in graph.edges]
    return graph, latency


def _deliveries(reserve: int) -> tuple[dict[int, int], int]:
    graph, latency = _ring_with_a_tail()
    sim = Sim(graph, replace(RouterConfig(), room_hop_reserve=reserve), seed=1)
    sim.latency = latency
    sim.connect_all(quiet=True)
    got: dict[int, int] = {}

    def on_deliver(node: int, deliver: Deliver) -> None:
        if deliver.envelope.dest_kind == DestKind.ROOM:
            got[node] = got.get(node, 0) + 1

    sim.on_deliver = on_deliver
    note = sim.routers[AUTHOR].make(
        EnvelopeType.NOTE, sim.now, dest_kind=DestKind.ROOM, dest=ROOM, payload=b"x"
    )
    sim.originate(AUTHOR, note)
    sim.run_until(sim.now + 5.0)
    again = sum(r.counters.get("room_passed_on_again", 0) for r in sim.routers)
    return got, again


def test_a_copy_over_fewer_links_carries_the_envelope_past_the_fast_copys_hop_limit() -> None:
    got, again = _deliveries(RouterConfig().room_hop_reserve)
    # NEAR first got the fast copy with no hop left; the slow direct one goes on
    assert set(got) == set(range(1, FAR + 1))
    assert all(count == 1 for count in got.values())  # delivered once each
    # passed on again only near the limit: NEAR and the chain's last nodes, not the whole chain
    assert 1 <= again <= 4


def test_without_hop_marks_the_members_behind_the_fast_copy_are_stranded() -> None:
    got, again = _deliveries(0)
    assert NEAR in got and NEAR + 1 not in got and FAR not in got
    assert again == 0
