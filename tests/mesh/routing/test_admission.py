"""Tests for mesh.routing.admission: penalties, bans and rate limits, through a network."""

from __future__ import annotations

from mesh.routing.router import Close
from sim.network import Network
from tests.mesh.routing.steps import config, counter, data, settle

# -- penalties and bans ------------------------------------------------------------------


def test_malformed_bytes_are_counted_and_dropped() -> None:
    net = Network(config())
    _, b = net.line("a", "b")
    net.inject("a", "b", b"not an envelope")
    net.run_until_idle()
    assert counter(b, "dropped_malformed") == 1
    assert not b.delivered
    assert "b" in net.node("a").links  # one fault is not enough for a ban


def test_repeated_invalid_traffic_bans_the_peer_until_the_ban_ends() -> None:
    net = Network(config(ban_threshold=50.0, ban_duration=100.0))
    m, b = net.line("m", "b")
    for _ in range(3):  # 20 points each
        net.inject("m", "b", b"garbage")
    net.run_until_idle()

    assert counter(b, "dropped_malformed") == 3
    assert counter(b, "bans") == 1
    assert b.router.is_banned(m.key, net.now)
    assert net.closed == [("b", "m", "banned")]
    assert not b.router.links and "m" not in b.links
    assert b.router.status(net.now)["bans"] == [m.router.identity.peer_id]

    link = 999
    assert b.router.link_up(link, m.key, net.now) == [Close(link, "banned")]
    net.connect("m", "b")
    assert "m" not in b.links
    assert counter(b, "dropped_banned") == 2

    net.advance(101)
    assert not b.router.is_banned(m.key, net.now)
    net.connect("m", "b")
    net.run_until_idle()
    assert "m" in b.links
    assert b.router.route_to(m.key, net.now) is not None


def test_penalties_decay_so_sparse_faults_never_ban() -> None:
    net = Network(config(ban_threshold=50.0, penalty_decay=1.0))
    _, b = net.line("m", "b")
    for _ in range(5):
        net.inject("m", "b", b"garbage")
        net.run_until_idle()
        net.advance(15)
    assert counter(b, "dropped_malformed") == 5
    assert counter(b, "bans") == 0
    assert "m" in b.links


# -- rate limits -----------------------------------------------------------------------


def test_a_link_over_its_burst_is_rate_limited_and_recovers() -> None:
    net = Network(config(link_rate=1.0, link_burst=5.0, announce_interval=1000.0))
    a, b, c = net.line("a", "b", "c")
    settle(net)
    net.advance(10)  # refill every bucket after the announces
    received = counter(b, "received")

    for i in range(8):
        net.inject("a", "b", data(a, net.now, b.key, bytes([i])).encode())
    net.run_until_idle()
    assert [e.payload for e in b.envelopes] == [bytes([i]) for i in range(5)]
    assert counter(b, "dropped_rate_limited") == 3
    assert counter(b, "received") - received == 8

    net.originate("c", data(c, net.now, b.key, b"other link"))
    net.run_until_idle()
    assert b.envelopes[-1].payload == b"other link"

    net.advance(1)
    net.originate("a", data(a, net.now, b.key, b"later"))
    net.run_until_idle()
    assert b.envelopes[-1].payload == b"later"
    assert counter(b, "dropped_rate_limited") == 3


def test_a_fault_a_layer_above_reports_costs_the_author_and_bans_it_at_the_threshold() -> None:
    net = Network(config(ban_threshold=100.0, penalty_decay=0.0))
    m, b = net.line("m", "b")
    link = b.links["m"]
    for _ in range(3):  # 25 points each: a bad file chunk
        assert b.router.penalise(m.key, "bad_chunk", net.now) == []
    assert not b.router.is_banned(m.key, net.now)
    assert b.router.penalise(m.key, "bad_chunk", net.now) == [Close(link, "banned")]
    assert b.router.is_banned(m.key, net.now)
    assert counter(b, "penalised_bad_chunk") == 4
    assert b.router.penalise(m.key, "no_such_reason", net.now) == []  # costs nothing
