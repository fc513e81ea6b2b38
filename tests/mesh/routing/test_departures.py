"""RouterConfig.local_departures: a node that left is withdrawn only around it."""

from __future__ import annotations

from mesh.routing.router import RouterConfig
from mesh.wire.envelope import FLAG_FLOOD
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
    assert counter(a, "repaired_locally") == 1
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


# -- transit paths: asked of the neighbours no farther, starved ones withdrawn as before ---------


def diamond() -> Network:
    """u - n - x - d, and n - m - p - d: n reaches d through x, m as far through p."""
    net = Network(config(local_departures=True))
    for name in "unxdmp":
        net.add(name)
    for one, other in [("u", "n"), ("n", "x"), ("x", "d")]:
        net.connect(one, other)
    net.run_until_idle()
    for one, other in [("n", "m"), ("m", "p"), ("p", "d")]:
        net.connect(one, other)
    net.run_until_idle()
    settle(net)
    net.advance(3.0)
    net.run_until_idle()
    return net


def test_a_path_through_a_node_that_left_is_repaired_by_a_neighbour_as_near() -> None:
    net = diamond()
    u, n, m, d = (net.nodes[name] for name in "unmd")
    before = n.router.route_to(d.key, net.now)
    assert before is not None and (before.next_hop, before.hops) == (net.nodes["x"].key, 2)

    net.disconnect("n", "x")
    net.run_until_idle()
    assert counter(n, "repairs_asked") == 1  # of m alone: u's path runs through n
    assert counter(m, "reshared") == 0  # m offers its path after a wait
    kept = u.router.route_to(d.key, net.now)
    assert kept is not None and kept.next_hop == n.key  # u is not told

    net.advance(2 * RouterConfig().reshare_delay)  # the offer is due, the repair's wait is not
    net.run_until_idle()
    assert counter(n, "repaired_locally") == 1
    after = n.router.route_to(d.key, net.now)
    assert after is not None and (after.next_hop, after.hops) == (m.key, 3)
    assert counter(n, "repairs_starved") == 0
    net.originate("u", data(u, net.now, d.key, b"around"))
    net.run_until_idle()
    assert [e.payload for e in d.envelopes] == [b"around"]


def test_a_repair_nobody_answers_is_withdrawn_as_before_when_its_wait_runs_out() -> None:
    net = Network(config(local_departures=True))
    for name in "unmxd":
        net.add(name)
    # n and m both reach d through x, each as near as the other
    for one, other in [("u", "n"), ("n", "x"), ("m", "x"), ("x", "d"), ("n", "m")]:
        net.connect(one, other)
    net.run_until_idle()
    settle(net)
    net.advance(3.0)
    net.run_until_idle()
    u, n = net.nodes["u"], net.nodes["n"]

    net.disconnect("n", "x")  # x goes: n and m, both two links from d, ask each other
    net.disconnect("m", "x")
    net.run_until_idle()
    assert counter(n, "repairs_asked") == 1
    assert u.router.route_to(d_key(net), net.now) is not None
    net.advance(RouterConfig().reshare_delay * 2 + 1.5)
    net.run_until_idle()
    assert counter(n, "repairs_starved") == 1
    assert u.router.route_to(d_key(net), net.now) is None  # withdrawn to u now


def d_key(net: Network) -> bytes:
    return net.nodes["d"].key


# -- HELD: a FLOOD-flagged retry follows the path to where its first try waits --------------------


def test_a_retry_flagged_flood_follows_the_path_to_the_node_that_holds_the_first() -> None:
    net = line(local=True)
    net.add("s")
    net.connect("s", "f")
    net.run_until_idle()
    net.advance(3.0)
    net.run_until_idle()
    s, a, x = (net.nodes[name] for name in "sax")
    net.disconnect("n", "x")
    net.run_until_idle()

    net.originate("s", data(s, net.now, x.key, b"while away"))
    net.run_until_idle()
    assert counter(a, "held_sent") == 1
    assert counter(s, "held_heard") == 1
    flooded = {name: counter(net.nodes[name], "flooded") for name in "sfa"}
    net.originate("s", data(s, net.now, x.key, b"while away", flags=FLAG_FLOOD))
    net.run_until_idle()
    assert {name: counter(net.nodes[name], "flooded") for name in "sfa"} == flooded
    assert counter(a, "dropped_parked_duplicate") == 1  # the first try waits there already

    net.connect("n", "x")
    net.run_until_idle()
    assert [e.payload for e in x.envelopes] == [b"while away"]


def test_a_departure_is_withdrawn_farther_once_its_neighbour_s_link_to_us_goes_too() -> None:
    net = line(local=True)
    f, a, x = net.nodes["f"], net.nodes["a"], net.nodes["x"]
    net.disconnect("n", "x")
    net.run_until_idle()
    assert f.router.route_to(x.key, net.now) is not None

    net.disconnect("a", "n")  # x's return would no longer reach a: f must not wait on a
    net.run_until_idle()
    assert counter(a, "departures_cut_off") == 1
    assert f.router.route_to(x.key, net.now) is None
