"""Tests for mesh.routing.paths: the path table, fallbacks and route repair, through a network."""

from __future__ import annotations

from mesh.routing.router import RouterConfig
from sim.network import Network, SimNode
from tests.mesh.routing.steps import config, counter, data, flip, settle

# -- announces build the path table ------------------------------------------


def test_link_up_announces_give_a_two_hop_route_across_a_line() -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")

    to_c = a.router.route_to(c.key, net.now)
    to_a = c.router.route_to(a.key, net.now)
    assert to_c is not None and (to_c.next_hop, to_c.hops) == (b.key, 2)
    assert to_a is not None and (to_a.next_hop, to_a.hops) == (b.key, 2)
    assert to_c.link == net.link("a", "b")


def test_stored_announces_reach_a_neighbour_whose_link_comes_up_later() -> None:
    net = Network(config())
    a, b, c = net.add("a"), net.add("b"), net.add("c")
    net.connect("c", "b")
    net.run_until_idle()
    c_seq = c.router.seq
    net.connect("b", "a")
    net.run_until_idle()

    assert c.router.seq == c_seq  # c announced nothing new: a learnt c from b's stored copy
    to_c = a.router.route_to(c.key, net.now)
    to_a = c.router.route_to(a.key, net.now)
    assert to_c is not None and (to_c.next_hop, to_c.hops) == (b.key, 2)
    assert to_a is not None and (to_a.next_hop, to_a.hops) == (b.key, 2)


def test_a_reconnected_link_relearns_routes_from_stored_announces() -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    net.disconnect("a", "b")
    assert a.router.route_to(c.key, net.now) is None

    net.connect("a", "b")
    net.run_until_idle()

    to_c = a.router.route_to(c.key, net.now)
    assert to_c is not None and (to_c.next_hop, to_c.hops) == (b.key, 2)


# -- relearned paths and young links ---------------------------------------------


def test_a_returning_node_does_not_echo_its_neighbours_tables_back_to_them() -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    r = net.add("r")
    net.connect("r", "a")
    net.connect("r", "c")
    net.advance(5.0)
    net.run_until_idle()
    net.disconnect("r", "a")
    net.disconnect("r", "c")
    net.run_until_idle()
    flooded = counter(r, "flooded")

    net.connect("r", "a")  # both links young: each side sends its table to r
    net.connect("r", "c")
    net.run_until_idle()
    assert counter(r, "routes_relearned") >= 2  # paths from announces it saw before leaving
    assert counter(r, "flooded") == flooded  # none echoed to the other new link
    assert all(r.router.route_to(n.key, net.now) is not None for n in (a, b, c))


def test_a_young_link_gets_a_relearned_path_its_peer_did_not_send_after_a_wait() -> None:
    net = Network(config())
    a, _, _, d = net.line("a", "b", "c", "d")  # every link younger than link_settle
    net.disconnect("c", "d")
    net.run_until_idle()
    net.connect("c", "d")
    net.run_until_idle()
    assert a.router.route_to(d.key, net.now) is None  # offered on young links, not flooded

    delay = RouterConfig().reshare_delay
    for _ in range(2):  # c offers it to b, then b to a
        net.advance(2 * delay)
        net.run_until_idle()
    route = a.router.route_to(d.key, net.now)
    assert route is not None and route.hops == 3


# -- fallbacks and withdrawals ------------------------------------------------------


def diamond(net: Network) -> tuple[SimNode, SimNode, SimNode, SimNode, SimNode]:
    """a - s, s - l and s - r, l - d and r - d: s reaches d two ways, two hops each."""
    a, s, left, right, d = (net.add(n) for n in ("a", "s", "l", "r", "d"))
    for one, other in [("a", "s"), ("s", "l"), ("s", "r"), ("l", "d"), ("r", "d")]:
        net.connect(one, other)
    net.run_until_idle()
    settle(net)
    return a, s, left, right, d


def test_an_equal_cost_neighbour_takes_over_a_broken_path_without_a_withdrawal() -> None:
    net = Network(config())
    a, s, left, right, d = diamond(net)
    before = s.router.route_to(d.key, net.now)
    assert before is not None and before.hops == 2 and before.alt is not None
    first, other = (left, right) if before.next_hop == left.key else (right, left)
    sent_before = counter(s, "withdrawals_sent")

    net.disconnect(first.name, "d")
    net.run_until_idle()
    after = s.router.route_to(d.key, net.now)
    assert after is not None and (after.next_hop, after.hops) == (other.key, 2)
    assert counter(s, "routes_switched") >= 1
    assert counter(s, "withdrawals_sent") == sent_before  # s told no one: nothing changed for a
    to_d = a.router.route_to(d.key, net.now)
    assert to_d is not None and (to_d.next_hop, to_d.hops) == (s.key, 3)
    net.originate("a", data(a, net.now, d.key, b"around"))
    net.run_until_idle()
    assert [e.payload for e in d.envelopes] == [b"around"]


def path_and_fallback(
    net: Network, s: SimNode, left: SimNode, right: SimNode, d: SimNode
) -> tuple[SimNode, SimNode]:
    """Which of the diamond's middle nodes carries s's path to d, and which is its fallback."""
    route = s.router.route_to(d.key, net.now)
    assert route is not None
    return (left, right) if route.next_hop == left.key else (right, left)


def test_a_fallback_that_lost_the_path_too_is_not_taken() -> None:
    net = Network(config())
    a, s, left, right, d = diamond(net)
    first, other = path_and_fallback(net, s, left, right, d)

    net.disconnect(other.name, "d")  # the fallback withdraws d first: s forgets it
    net.run_until_idle()
    route = s.router.route_to(d.key, net.now)
    assert route is not None and route.next_hop == first.key and route.alt is None
    net.disconnect(first.name, "d")  # now d is gone: s and a must lose their paths
    net.run_until_idle()
    assert s.router.route_to(d.key, net.now) is None
    assert a.router.route_to(d.key, net.now) is None


def test_a_fallback_on_a_link_that_went_down_is_forgotten() -> None:
    net = Network(config())
    _, s, left, right, d = diamond(net)
    first, other = path_and_fallback(net, s, left, right, d)
    net.disconnect("s", other.name)
    net.run_until_idle()
    net.connect("s", other.name)  # back, but not yet heard from about d on this link
    route = s.router.route_to(d.key, net.now)
    assert route is not None and route.alt is None
    net.disconnect(first.name, "d")
    net.run_until_idle()  # other's table arrives too, so s learns d again through it
    route = s.router.route_to(d.key, net.now)
    assert route is not None and route.next_hop == other.key


def test_a_neighbour_that_withdrew_a_path_to_us_is_not_told_when_we_lose_it_too() -> None:
    net = Network(config())
    u, v, _, _, d = (net.add(n) for n in "uvpqd")
    for one, other in [("u", "p"), ("p", "d"), ("v", "q"), ("q", "d"), ("u", "v")]:
        net.connect(one, other)
    net.run_until_idle()
    settle(net)
    net.disconnect("q", "d")  # v loses d and withdraws it to u, which offers its path back
    net.run_until_idle()
    assert v.router.route_to(d.key, net.now) is None
    assert u.router.offers.pending(net.link("u", "v"), d.key)
    sent = counter(u, "withdrawals_sent")

    net.disconnect("p", "d")  # before the offer is due, u loses d too
    net.run_until_idle()
    assert u.router.route_to(d.key, net.now) is None
    assert counter(u, "withdrawals_spared") == 1  # v had nothing through u to drop
    assert counter(u, "withdrawals_sent") == sent  # and p, where the news came from, neither
    net.advance(3.0)  # the offer falls due with no path to give: nothing goes
    net.run_until_idle()
    assert u.router.route_to(d.key, net.now) is None
    assert v.router.route_to(d.key, net.now) is None


def test_a_neighbour_that_lost_a_path_we_still_have_gets_it_re_shared() -> None:
    net = Network(config())
    a, b, c, d, _ = (net.add(n) for n in "abcdx")
    for left, right in [("c", "x"), ("x", "d"), ("b", "d"), ("a", "b")]:
        net.connect(left, right)
    net.run_until_idle()
    net.connect("b", "c")  # c keeps its path through x
    settle(net)

    net.disconnect("b", "d")  # b withdraws d; c still reaches d through x
    net.run_until_idle()
    assert b.router.route_to(d.key, net.now) is None
    assert a.router.route_to(d.key, net.now) is None
    delay = RouterConfig().reshare_delay  # c offers after a random wait in [delay, 2 delay)
    assert net.now + delay <= c.router.next_deadline() <= net.now + 2 * delay

    net.advance(2 * delay)
    net.run_until_idle()
    assert counter(c, "reshared") >= 1
    to_d = b.router.route_to(d.key, net.now)
    assert to_d is not None and (to_d.next_hop, to_d.hops) == (c.key, 3)
    to_d = a.router.route_to(d.key, net.now)
    assert to_d is not None and (to_d.next_hop, to_d.hops) == (b.key, 4)
    net.originate("a", data(a, net.now, d.key, b"around"))
    net.run_until_idle()
    assert [e.payload for e in d.envelopes] == [b"around"]


# -- the path table ---------------------------------------------------------------


def test_routes_expire_after_route_ttl_without_refresh() -> None:
    net = Network(config(route_ttl=10.0, announce_interval=1000.0))
    a, b, c = net.line("a", "b", "c")
    settle(net)

    net.advance(9)
    assert a.router.route_to(c.key, net.now) is not None
    net.advance(2)
    assert a.router.route_to(c.key, net.now) is None
    assert c.key not in a.router.routes  # tick removed it, not just hid it
    assert a.router.route_to(b.key, net.now) is not None  # a neighbour never expires
    assert [r["dest"] for r in a.router.status(net.now)["routes"]] == [b.router.identity.peer_id]


def test_periodic_announces_keep_routes_alive() -> None:
    net = Network(config(route_ttl=10.0, announce_interval=4.0))
    a, _, c = net.line("a", "b", "c")
    settle(net)
    seq = c.router.seq

    for _ in range(10):  # 30 s, three times the route ttl
        net.advance(3)
        net.run_until_idle()
        assert a.router.route_to(c.key, net.now) is not None

    assert c.router.seq - seq == 5  # due every 4 s, seen at the next 3 s tick: 6, 12, ..., 30
    route = a.router.route_to(c.key, net.now)
    assert route is not None and route.expires > net.now + 5


def test_link_down_removes_every_route_through_that_link() -> None:
    net = Network(config())
    a, b, c, d = net.line("a", "b", "c", "d")

    net.disconnect("b", "c")

    assert b.router.route_to(a.key, net.now) is not None
    assert b.router.route_to(c.key, net.now) is None
    assert b.router.route_to(d.key, net.now) is None
    assert c.router.route_to(b.key, net.now) is None
    assert a.router.route_to(d.key, net.now) is not None  # a has not heard yet

    net.run_until_idle()  # b's withdrawal reaches a
    assert a.router.route_to(b.key, net.now) is not None
    assert a.router.route_to(c.key, net.now) is None
    assert a.router.route_to(d.key, net.now) is None


def test_the_path_table_is_bounded_by_max_routes() -> None:
    net = Network(config(max_routes=3))
    a, hub = net.add("a"), net.add("hub")
    net.connect("a", "hub")
    leaves = [net.add(f"leaf{i}") for i in range(5)]
    for leaf in leaves:
        net.connect("hub", leaf.name)
    net.run_until_idle()

    assert len(a.router.routes) == 3
    assert counter(a, "routes_evicted") == 3
    assert a.router.route_to(hub.key, net.now) is not None  # neighbours are never evicted
    assert a.router.status(net.now)["caches"]["routes"] == {"size": 3, "bound": 3}
    # the hub's neighbours fill its table and cannot be evicted; more are refused, not crashed
    assert len(hub.router.routes) == 3
    assert counter(hub, "dropped_route_table_full") >= 1


def test_a_relay_zeroing_the_hop_count_cannot_pin_a_permanent_route() -> None:
    net = Network(config(route_ttl=10.0, announce_interval=1000.0))
    a, _, c = net.line("a", "b", "c")
    settle(net)
    # b claims c's envelope crossed no relay, as if c were a's neighbour
    net.inject("b", "a", data(c, net.now, a.key).encode())
    net.run_until_idle()
    route = a.router.route_to(c.key, net.now)
    assert route is not None and route.hops == 2  # only the neighbour itself is 1 hop away

    net.advance(11)
    assert a.router.route_to(c.key, net.now) is None


def test_a_re_shared_announce_with_a_forged_signature_gives_no_path() -> None:
    net = Network(config())
    a, b, c = (net.add(n) for n in ("a", "b", "c"))
    net.add("m")
    net.connect("m", "a")
    net.connect("a", "b")
    net.connect("b", "c")
    net.run_until_idle()
    stored = b.router.routes[c.key].announce
    assert stored is not None
    net.disconnect("b", "c")
    net.run_until_idle()
    assert a.router.route_to(c.key, net.now) is None  # withdrawn

    # m re-shares c's announce (an id a has seen) with a broken signature
    net.inject("m", "a", flip(stored, len(stored) - 1))
    net.run_until_idle()
    assert a.router.route_to(c.key, net.now) is None

    net.add("n")  # a newcomer must not be handed the forgery in a's name
    net.connect("a", "n")
    net.run_until_idle()
    assert counter(net.node("n"), "dropped_bad_signature") == 0
    assert counter(net.node("n"), "received") >= 1
