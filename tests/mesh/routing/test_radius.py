"""Tests for RouterConfig.withdraw_radius: far paths kept on a withdrawal, route errors,
UNREACHABLE, and the author's FLOOD-flagged retry waiting while its path is in doubt."""

from __future__ import annotations

from mesh.wire.envelope import FLAG_FLOOD
from sim.network import Network
from tests.mesh.routing.steps import config, counter, data, settle


def _line(radius: int) -> Network:
    net = Network(config(withdraw_radius=radius))
    net.line("a", "b", "c", "d")
    settle(net)
    net.disconnect("c", "d")  # c loses d: it is 1 link from d, b 2 and a 3
    net.run_until_idle()
    return net


def test_without_a_radius_a_lost_path_is_withdrawn_across_the_mesh() -> None:
    net = _line(0)
    a, b, d = net.nodes["a"], net.nodes["b"], net.nodes["d"]
    assert b.router.route_to(d.key, net.now) is None
    assert a.router.route_to(d.key, net.now) is None


def test_a_path_longer_than_the_radius_is_kept_and_the_news_goes_no_farther() -> None:
    net = _line(1)
    a, b, c, d = (net.nodes[n] for n in "abcd")
    assert c.router.route_to(d.key, net.now) is None  # within the radius: withdrawn
    assert b.router.route_to(d.key, net.now) is not None  # 2 links: kept
    assert counter(b, "withdrawals_kept") == 1 and counter(b, "withdrawals_sent") == 0
    assert a.router.route_to(d.key, net.now) is not None  # never told


def test_traffic_on_a_kept_path_waits_where_it_ends_and_its_author_hears_so() -> None:
    net = _line(1)
    a, b, c, d = (net.nodes[n] for n in "abcd")
    net.originate("a", data(a, net.now, d.key, b"first"))
    net.run_until_idle()
    assert counter(c, "parked") == 1
    assert counter(c, "route_errors_sent") == 1 and counter(c, "unreachable_sent") == 1
    assert b.router.route_to(d.key, net.now) is None  # a second withdrawal drops a kept path
    assert d.key in a.router.paths.kept  # b's withdrawal, then c's UNREACHABLE: in doubt

    # the author's FLOOD-flagged retry waits for word of d instead of flooding the mesh
    net.originate("a", data(a, net.now, d.key, b"retry", flags=FLAG_FLOOD))
    net.run_until_idle()
    assert counter(a, "parked") == 1 and not d.envelopes

    net.connect("c", "d")  # d is back: what waited at c goes on, a's wait ends
    net.run_until_idle()
    net.advance(3.0)  # (relearned paths go to links younger than link_settle once they settle)
    net.run_until_idle()
    assert [e.payload for e in d.envelopes] == [b"first"]
    assert a.router.route_to(d.key, net.now) is not None
    assert counter(a, "dropped_parked_resolved") == 1
    assert counter(a, "park_expired_flooded") == 0
