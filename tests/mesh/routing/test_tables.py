"""Tests for mesh.routing.tables: TABLE payloads, and tables handled entry by entry."""

from __future__ import annotations

import pytest

from mesh.routing.tables import pack_table, unpack_table
from mesh.wire.envelope import MAX_PAYLOAD, EnvelopeType
from sim.network import Network
from tests.mesh.routing.steps import config, counter, data, flip

# -- tables ------------------------------------------------------------------------


def test_a_table_entry_counts_as_its_own_announce_and_a_bad_entry_costs_the_table_sender() -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    d = net.add("d")  # on no link of b's: a's table is all b can learn it from
    fresh = d.router.make(EnvelopeType.ANNOUNCE, net.now).with_hops(1).encode()
    forged = flip(c.router.make(EnvelopeType.ANNOUNCE, net.now).with_hops(1).encode(), 70)
    (payload,) = pack_table([fresh, forged])
    net.inject(
        "a", "b", a.router.make(EnvelopeType.TABLE, net.now, payload=payload, hop_limit=1).encode()
    )
    net.run_until_idle()
    route = b.router.route_to(d.key, net.now)
    assert route is not None and route.hops == 2 and route.link == net.link("b", "a")
    assert counter(b, "table_entries") == 2 and counter(b, "dropped_bad_signature") == 1
    assert counter(c, "dropped_duplicate") == 0  # d's announce flooded on from b like any
    assert c.router.route_to(d.key, net.now) is not None


@pytest.mark.parametrize(
    "why", ["truncated", "overrun", "not an announce", "another author", "hop limit"]
)
def test_a_malformed_table_is_dropped_whole_or_entry_by_entry_and_counted(why: str) -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    ghost = net.add("ghost")
    announce = ghost.router.make(EnvelopeType.ANNOUNCE, net.now).encode()
    author, hop_limit = a.router, 1
    payload = pack_table([announce])[0]
    if why == "truncated":
        payload = payload[:1]
    elif why == "overrun":
        payload = payload[:-1]
    elif why == "not an announce":
        payload = pack_table([data(ghost, net.now, c.key).encode()])[0]
    elif why == "another author":
        author = net.add("stranger").router  # only the neighbour's own table rides on its link
    else:
        hop_limit = 2
    table = author.make(EnvelopeType.TABLE, net.now, payload=payload, hop_limit=hop_limit)
    net.inject("a", "b", table.encode())
    net.run_until_idle()
    assert counter(b, "dropped_malformed") == 1
    assert b.router.route_to(ghost.key, net.now) is None
    assert not c.delivered


def test_a_table_larger_than_the_links_tokens_is_refused() -> None:
    net = Network(config(link_burst=3.0, link_rate=0.001))
    a, b = net.line("a", "b")
    others = [net.add(f"x{i}").router for i in range(4)]
    entries = [r.make(EnvelopeType.ANNOUNCE, net.now).encode() for r in others]
    (payload,) = pack_table(entries)
    net.inject(
        "a", "b", a.router.make(EnvelopeType.TABLE, net.now, payload=payload, hop_limit=1).encode()
    )
    net.run_until_idle()
    assert counter(b, "dropped_rate_limited") == 1
    assert all(b.router.route_to(r.identity.public_key, net.now) is None for r in others)


def test_tables_split_at_the_payload_limit_and_read_back_whole() -> None:
    frames = [bytes([i % 251]) * (300 + i) for i in range(900)]
    payloads = pack_table(frames)
    assert len(payloads) > 1 and all(len(p) <= MAX_PAYLOAD for p in payloads)
    assert [f for p in payloads for f in unpack_table(p)] == frames
    assert pack_table([]) == []
