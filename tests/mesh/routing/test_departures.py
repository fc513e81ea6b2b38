"""RouterConfig.local_departures: a node that left is withdrawn only around it."""

from __future__ import annotations

from sim.network import Network
from tests.mesh.routing.steps import config, counter, data, settle


def line(local: bool) -> Network:
    net = Network(config(local_departures=local))
    net.line("f", "a", "n", "x")
    settle(net)
    net.advance(3.0)  # links older than link_settle: relearned paths go on at once
    net.run_until_idle()
    return net


def test_a_node_that_leaves_is_withdrawn_two_links_around_it_and_no_farther() -> None:
    net = line(local=True)
    f, a, n, x = (net.nodes[name] for name in "fanx")
    net.disconnect("n", "x")
    net.run_until_idle()

    assert n.router.route_to(x.key, net.now) is None
    assert a.router.route_to(x.key, net.now) is None
    assert counter(a, "withdrawals_kept_local") == 1
    assert counter(a, "withdrawals_sent") == 0
    kept = f.router.route_to(x.key, net.now)  # far away, the path is kept
    assert kept is not None and kept.next_hop == a.key

    net.originate("f", data(f, net.now, x.key, b"while away"))
    net.run_until_idle()
    assert counter(a, "parked") == 1  # it waits in x's neighbourhood

    net.connect("n", "x")
    net.run_until_idle()
    assert [e.payload for e in x.envelopes] == [b"while away"]
    assert counter(a, "departed_relearned") == 1
    back = a.router.route_to(x.key, net.now)
    assert back is not None and (back.next_hop, back.hops) == (n.key, 2)


def test_without_the_setting_the_leave_is_withdrawn_across_the_mesh() -> None:
    net = line(local=False)
    f, x = net.nodes["f"], net.nodes["x"]
    net.disconnect("n", "x")
    net.run_until_idle()
    assert f.router.route_to(x.key, net.now) is None
    assert counter(net.nodes["a"], "withdrawals_kept_local") == 0


def test_a_path_back_to_a_departed_node_is_taken_only_from_a_nearer_neighbour() -> None:
    net = line(local=True)
    a, x = net.nodes["a"], net.nodes["x"]
    net.add("g")
    net.connect("g", "f")  # g's path to x runs through f and a
    net.run_until_idle()
    net.disconnect("n", "x")
    net.run_until_idle()

    net.connect("a", "g")  # g's table offers x four links away: through a itself
    net.run_until_idle()
    assert counter(a, "relearn_infeasible") >= 1
    assert a.router.route_to(x.key, net.now) is None
