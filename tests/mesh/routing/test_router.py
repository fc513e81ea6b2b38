"""Tests for mesh.routing.router: routing rules, stepped through an in-memory network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mesh.errors import EnvelopeError, UsageError
from mesh.routing.replay import REPLAY_CAPACITY
from mesh.routing.router import (
    PENALTIES,
    Close,
    RouterConfig,
    Send,
    check_signatures,
    pack_table,
    unpack_table,
)
from mesh.wire.envelope import FLAG_FLOOD, MAX_HOPS, MAX_PAYLOAD, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity, encode_peer_id
from sim.network import Network, SimNode, seed_for

# Small bounds keep every scenario tiny; jitter 0 makes announce times exact.
BASE: dict[str, Any] = {
    "seen_capacity": 1000,
    "seen_ttl": 600.0,
    "max_routes": 100,
    "route_ttl": 90.0,
    "announce_interval": 30.0,
    "announce_jitter": 0.0,
    "max_age": 3600.0,
    "max_future": 60.0,
    "link_rate": 1000.0,
    "link_burst": 1000.0,
    "ban_threshold": 100.0,
    "penalty_decay": 1.0,
    "ban_duration": 600.0,
}

GHOST = Identity.from_seed(seed_for("ghost"), "ghost")  # a peer that is on no link


def config(**overrides: Any) -> RouterConfig:
    return RouterConfig(**{**BASE, **overrides})


def settle(net: Network) -> None:
    """Let every router make its first-tick announce, so the next one is a full interval away."""
    net.advance(0)
    net.run_until_idle()


def data(node: SimNode, now: float, dest: bytes, payload: bytes = b"hello", **kw: Any) -> Envelope:
    return node.router.make(
        EnvelopeType.DATA, now, dest_kind=DestKind.PEER, dest=dest, payload=payload, **kw
    )


def flip(wire: bytes, index: int) -> bytes:
    return wire[:index] + bytes([wire[index] ^ 0x01]) + wire[index + 1 :]


def counter(node: SimNode, name: str) -> int:
    return node.router.counters.get(name, 0)


def totals(net: Network, name: str) -> dict[str, int]:
    return {n: counter(node, name) for n, node in net.nodes.items()}


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


# -- directed traffic ----------------------------------------------------------


def test_directed_data_follows_the_known_path_without_flooding() -> None:
    net = Network(config())
    nodes = net.line("n0", "n1", "n2", "n3", "n4")
    first, last = nodes[0], nodes[-1]
    sent, flooded = net.transmissions, totals(net, "flooded")

    envelope = data(first, net.now, last.key, b"along the line")
    net.originate("n0", envelope)
    net.run_until_idle()

    assert net.transmissions - sent == 4
    assert totals(net, "flooded") == flooded
    assert [e.message_id for e in last.envelopes] == [envelope.message_id]
    assert last.envelopes[0].payload == b"along the line"
    assert last.delivered[0].link == net.link("n4", "n3")
    assert [counter(n, "relayed") for n in nodes[1:4]] == [1, 1, 1]
    assert all(not n.delivered for n in nodes[:4])


def test_a_reply_follows_the_reverse_path_the_request_taught() -> None:
    # announces rarely, so routes learnt at link-up expire and only the ping can teach paths
    net = Network(config(route_ttl=10.0, announce_interval=1000.0))
    nodes = net.line("n0", "n1", "n2", "n3", "n4")
    first, last = nodes[0], nodes[-1]
    settle(net)
    net.advance(11)
    assert first.router.route_to(last.key, net.now) is None
    assert last.router.route_to(first.key, net.now) is None

    ping = first.router.make(EnvelopeType.PING, net.now, dest_kind=DestKind.PEER, dest=last.key)
    net.originate("n0", ping)
    net.run_until_idle()
    assert [e.type for e in last.envelopes] == [EnvelopeType.PING]
    back = last.router.route_to(first.key, net.now)
    assert back is not None and (back.next_hop, back.hops) == (nodes[3].key, 4)

    sent, flooded = net.transmissions, totals(net, "flooded")
    pong = last.router.make(EnvelopeType.PONG, net.now, dest_kind=DestKind.PEER, dest=first.key)
    net.originate("n4", pong)
    net.run_until_idle()

    assert [e.type for e in first.envelopes] == [EnvelopeType.PONG]
    assert net.transmissions - sent == 4
    assert totals(net, "flooded") == flooded
    forth = first.router.route_to(last.key, net.now)
    assert forth is not None and (forth.next_hop, forth.hops) == (nodes[1].key, 4)


def test_without_a_route_a_directed_envelope_floods_once_per_node() -> None:
    net = Network(config())
    names = ["a", "b", "c", "d"]
    for name in names:
        net.add(name)
    for i, left in enumerate(names):  # full mesh: every node hears the flood several times
        for right in names[i + 1 :]:
            net.connect(left, right)
    net.run_until_idle()
    sent = net.transmissions
    flooded, duplicates = totals(net, "flooded"), totals(net, "dropped_duplicate")

    net.originate("a", data(net.node("a"), net.now, GHOST.public_key))
    net.run_until_idle()

    assert {n: v - flooded[n] for n, v in totals(net, "flooded").items()} == dict.fromkeys(names, 1)
    # a sends 3 copies, each of b, c, d passes 2 on; 3 first sightings, 6 duplicates
    assert net.transmissions - sent == 9
    dups = totals(net, "dropped_duplicate")
    assert sum(dups.values()) - sum(duplicates.values()) == 6
    assert all(not node.delivered for node in net.nodes.values())


def test_flood_flag_floods_even_when_a_route_exists() -> None:
    net = Network(config())
    a, _, c, d = (net.add(n) for n in "abcd")
    net.connect("a", "b")
    net.connect("b", "c")
    net.connect("a", "d")
    net.run_until_idle()
    assert a.router.route_to(c.key, net.now) is not None

    sent = net.transmissions
    net.originate("a", data(a, net.now, c.key, b"directed"))
    net.run_until_idle()
    assert net.transmissions - sent == 2  # a->b->c

    sent = net.transmissions
    net.originate("a", data(a, net.now, c.key, b"flooded", flags=FLAG_FLOOD))
    net.run_until_idle()
    assert net.transmissions - sent == 3  # a->b, a->d, b->c
    assert [e.payload for e in c.envelopes] == [b"directed", b"flooded"]
    assert not d.delivered


# -- lost paths: park, re-share, re-announce ---------------------------------------


def test_an_envelope_whose_path_was_lost_waits_and_goes_when_a_path_returns() -> None:
    net = Network(config())
    a, b, _, d = net.line("a", "b", "c", "d")
    net.advance(5.0)  # links older than link_settle: they pass relearned paths on
    net.run_until_idle()
    net.disconnect("c", "d")
    net.run_until_idle()  # the withdrawal reaches b and a
    assert a.router.route_to(d.key, net.now) is None

    sent = net.transmissions
    net.originate("a", data(a, net.now, d.key, b"later"))
    net.originate("a", data(a, net.now, d.key, b"later"))  # a retry: the same item again
    net.run_until_idle()
    # one copy to a's neighbour (its mailbox keeps it, should a leave), and no flood
    assert net.transmissions == sent + 1
    assert counter(a, "parked_handed_to_a_neighbour") == 1
    assert counter(b, "parked") == 1
    assert counter(a, "parked") == 1 and counter(a, "dropped_parked_duplicate") == 1
    assert a.router.status(net.now)["caches"]["parked"]["size"] == 1
    assert counter(a, "dropped_no_link") == 0

    # d is back: its announce (one the mesh saw before) travels on from c to a
    net.connect("c", "d")
    net.run_until_idle()
    assert [e.payload for e in d.envelopes] == [b"later"]
    assert counter(a, "unparked") == 1 and sum(totals(net, "flooded").values()) > 0
    assert not a.router.lot.parked
    route = a.router.route_to(d.key, net.now)
    assert route is not None and route.hops == 3


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


def test_a_parked_envelope_is_dropped_and_counted_after_park_ttl() -> None:
    net = Network(config(park_ttl=5.0))
    a, _, c = net.line("a", "b", "c")
    net.disconnect("b", "c")
    net.run_until_idle()
    net.originate("a", data(a, net.now, c.key, b"too late"))
    assert a.router.next_deadline() <= net.now + 5.0

    net.advance(6.0)
    assert counter(a, "dropped_park_expired") == 1
    assert not a.router.lot.parked
    # the author's neighbour took a copy when it was parked (for its mailbox): that one
    # still reaches c, once, when c is back
    net.connect("b", "c")
    net.run_until_idle()
    assert [(d.envelope.payload, d.envelope.hops) for d in c.delivered] == [(b"too late", 1)]


def test_an_authors_flood_flagged_retry_floods_when_its_wait_for_a_path_runs_out() -> None:
    # c stays online, but a's path to it is lost and the re-share that would repair it
    # comes too late: the author's FLOOD-flagged retry is its last resort
    net = Network(config(park_ttl=5.0, reshare_delay=100.0))
    a, _, c, _ = (net.add(n) for n in "abcx")
    for left, right in [("a", "b"), ("b", "c"), ("c", "x"), ("x", "b")]:
        net.connect(left, right)
    net.run_until_idle()
    net.advance(5.0)
    net.run_until_idle()
    net.disconnect("b", "c")  # b and a lose c; x, which still reaches it, offers it later
    net.run_until_idle()
    assert a.router.route_to(c.key, net.now) is None

    sent = net.transmissions
    net.originate("a", data(a, net.now, c.key, b"item"))
    net.originate("a", data(a, net.now, c.key, b"item", flags=FLAG_FLOOD))  # the third try
    net.run_until_idle()
    # both wait for a path; b, a's neighbour, got one copy of the first (for its mailbox)
    assert net.transmissions == sent + 1 and not c.delivered
    assert counter(a, "dropped_parked_duplicate") == 1

    net.advance(6.0)  # past park_ttl, long before the re-share
    net.run_until_idle()
    assert [(e.payload, e.flood) for e in c.envelopes] == [(b"item", True)]
    assert counter(a, "park_expired_flooded") == 1 and counter(a, "dropped_park_expired") == 0
    assert not a.router.lot.parked


def test_a_waiting_item_goes_along_a_returning_path_without_its_flood_flagged_retry() -> None:
    net = Network(config(park_ttl=5.0))
    a, _, c = net.line("a", "b", "c")
    net.advance(5.0)
    net.run_until_idle()
    net.disconnect("b", "c")
    net.run_until_idle()
    net.originate("a", data(a, net.now, c.key, b"item"))
    net.originate("a", data(a, net.now, c.key, b"item", flags=FLAG_FLOOD))

    net.connect("b", "c")  # the path returns in time: the first copy goes, along it
    net.run_until_idle()
    assert [(e.payload, e.flood) for e in c.envelopes] == [(b"item", False)]
    net.advance(6.0)
    net.run_until_idle()
    assert len(c.delivered) == 1 and counter(a, "park_expired_flooded") == 0


def test_a_relay_still_floods_a_flood_flagged_envelope_it_has_no_path_for() -> None:
    net = Network(config())
    _, b, c, d = net.line("a", "b", "c", "d")
    net.disconnect("c", "d")
    net.run_until_idle()
    net.connect("d", "a")  # a ring: a-b-c, a-d
    net.run_until_idle()
    net.disconnect("d", "a")  # b and c lost d; a lost it too
    net.run_until_idle()

    net.inject("b", "c", data(b, net.now, d.key, b"flagged", flags=FLAG_FLOOD).encode())
    net.run_until_idle()
    assert counter(c, "parked") == 0  # c floods it on as flagged (to no one but b)


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


# -- hop limit -------------------------------------------------------------------


@pytest.mark.parametrize("flags", [0, FLAG_FLOOD])
def test_hop_limit_stops_an_envelope_one_link_short_of_its_destination(flags: int) -> None:
    net = Network(config())
    a, _, c, d = net.line("a", "b", "c", "d")

    net.originate("a", data(a, net.now, d.key, b"too far", hop_limit=2, flags=flags))
    net.run_until_idle()
    assert not d.delivered
    assert counter(c, "dropped_hop_limit") == 1

    net.originate("a", data(a, net.now, d.key, b"just right", hop_limit=3, flags=flags))
    net.run_until_idle()
    assert [e.payload for e in d.envelopes] == [b"just right"]


def test_decode_rejects_a_hop_limit_above_max_hops() -> None:
    node = Network(config()).add("a")
    wire = data(node, 1_700_000_000.0, GHOST.public_key, hop_limit=MAX_HOPS).encode()
    assert Envelope.decode(wire).hop_limit == MAX_HOPS

    hop_limit_at = 4  # hops, version, type, flags, hop_limit
    too_many = wire[:hop_limit_at] + bytes([MAX_HOPS + 1]) + wire[hop_limit_at + 1 :]
    with pytest.raises(EnvelopeError, match="hop limit"):
        Envelope.decode(too_many)
    with pytest.raises(EnvelopeError, match="hop count"):
        Envelope.decode(bytes([MAX_HOPS + 1]) + wire[1:])
    with pytest.raises(UsageError):
        data(node, 1_700_000_000.0, GHOST.public_key, hop_limit=MAX_HOPS + 1)


# -- dedup cache -----------------------------------------------------------------


def ping(node: SimNode, now: float, dest: bytes, payload: bytes = b"12345678") -> Envelope:
    """A PING: a type the mailbox never stores, so the plain dedup rule applies."""
    return node.router.make(
        EnvelopeType.PING, now, dest_kind=DestKind.PEER, dest=dest, payload=payload
    )


def test_the_same_envelope_twice_is_delivered_once() -> None:
    net = Network(config())
    a, b = net.line("a", "b")
    wire = ping(a, net.now, b.key).encode()

    net.inject("a", "b", wire)
    net.inject("a", "b", wire)
    net.inject("a", "b", bytes([1]) + wire[1:])  # the hop count is outside the id
    net.run_until_idle()

    assert len(b.delivered) == 1
    assert counter(b, "dropped_duplicate") == 2


def test_a_stored_type_seen_again_is_handed_up_again_for_a_new_receipt() -> None:
    """A mailbox handing over a copy we had: the layer above must see it to receipt again."""
    net = Network(config())
    a, b = net.line("a", "b")
    wire = data(a, net.now, b.key).encode()
    net.inject("a", "b", wire)
    net.inject("a", "b", flip(wire, len(wire) - 1))  # same id, forged signature: not handed up
    net.inject("a", "b", wire)
    net.run_until_idle()

    assert len(b.delivered) == 2
    assert counter(b, "redelivered") == 1
    assert counter(b, "dropped_duplicate") == 1


def test_a_redelivery_replayed_within_the_interval_is_dropped_and_charged() -> None:
    """Once handed up again, the same envelope is not handed up again for REPLAY_INTERVAL."""
    net = Network(config())
    a, b = net.line("a", "b")
    wire = data(a, net.now, b.key).encode()
    for _ in range(4):
        net.inject("a", "b", wire)
    net.run_until_idle()

    assert len(b.delivered) == 2  # the first time, and one redelivery
    assert counter(b, "dropped_replayed") == 2
    assert b.router.penalties[a.key].score == 2 * PENALTIES["replayed"]


def test_relays_keep_stored_types_for_peers_that_are_not_neighbours() -> None:
    net = Network(config())
    a, b, c, d = net.line("a", "b", "c", "d")
    net.originate("a", data(a, net.now, d.key))
    net.originate("a", ping(a, net.now, d.key))  # pings are never kept
    net.run_until_idle()

    assert [k.envelope.dest for k in b.kept] == [d.key]  # d is two links beyond b
    assert b.kept[0].store is True
    assert not c.kept  # c hands it to its neighbour d directly
    assert len(d.delivered) == 2


def test_the_seen_cache_honours_its_capacity() -> None:
    net = Network(config(seen_capacity=3))
    a, b = net.line("a", "b")
    evicted, held = b.router.seen.evicted, len(b.router.seen)
    wires = [ping(a, net.now, b.key, bytes([i])).encode() for i in range(5)]

    for wire in wires:
        net.inject("a", "b", wire)
    net.run_until_idle()

    assert len(b.delivered) == 5
    assert len(b.router.seen) == 3
    assert b.router.seen.evicted - evicted == held + 5 - 3
    assert b.router.status(net.now)["caches"]["seen_ids"] == {"size": 3, "bound": 3}
    net.inject("a", "b", wires[-1])  # still remembered
    net.run_until_idle()
    assert counter(b, "dropped_duplicate") == 1


def test_seen_ids_expire_after_the_ttl() -> None:
    net = Network(config(seen_ttl=10.0))
    a, b = net.line("a", "b")
    envelope = data(a, net.now, b.key)
    net.inject("a", "b", envelope.encode())
    net.run_until_idle()
    assert b.router.seen.seen(envelope.message_id, net.now)

    net.advance(9)
    assert b.router.seen.seen(envelope.message_id, net.now)
    net.advance(2)
    assert not b.router.seen.seen(envelope.message_id, net.now)
    net.run_until_idle()
    assert len(b.router.seen) < 3  # the tick dropped old ids, only fresh announces remain

    net.inject("a", "b", envelope.encode())
    net.run_until_idle()
    assert len(b.delivered) == 2
    assert counter(b, "dropped_duplicate") == 0


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


# -- timestamp window -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "reason"), [(-3601.0, "stale"), (61.0, "future"), (-3599.0, None), (59.0, None)]
)
def test_envelopes_outside_the_timestamp_window_are_dropped(
    offset: float, reason: str | None
) -> None:
    net = Network(config(max_age=3600.0, max_future=60.0))
    a, b = net.line("a", "b")

    net.inject("a", "b", data(a, net.now + offset, b.key).encode())
    net.run_until_idle()

    if reason is None:
        assert len(b.delivered) == 1
    else:
        assert not b.delivered
        assert counter(b, f"dropped_{reason}") == 1


# -- signatures ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["signature", "payload"])
def test_a_forged_envelope_is_neither_delivered_nor_forwarded(where: str) -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    envelope = data(a, net.now, c.key, b"payload")
    wire = envelope.encode()
    index = len(wire) - 1 if where == "signature" else len(wire) - 64 - 1
    sent = net.transmissions

    net.inject("a", "b", flip(wire, index))
    net.run_until_idle()
    assert counter(b, "dropped_bad_signature") == 1
    assert net.transmissions - sent == 1  # only the forged copy itself
    assert not b.delivered and not c.delivered

    net.inject("a", "b", wire)  # the forgery did not poison the dedup cache
    net.run_until_idle()
    assert [e.message_id for e in c.envelopes] == [envelope.message_id]


def test_a_neighbours_own_notice_rides_on_the_link_but_one_naming_another_author_is_checked() -> (
    None
):
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    assert b.router.route_to(c.key, net.now) is not None
    own = a.router.make(EnvelopeType.WITHDRAW, net.now, payload=c.key, hop_limit=1).encode()
    net.inject("a", "b", flip(own, len(own) - 1))  # the link vouches for a: no check
    net.run_until_idle()
    assert counter(b, "dropped_bad_signature") == 0

    ghost = Network(config()).add("ghost").router  # an author who is not on the link
    relayed = ghost.make(EnvelopeType.WITHDRAW, net.now, payload=c.key, hop_limit=1).encode()
    net.inject("a", "b", flip(relayed, len(relayed) - 1))
    net.run_until_idle()
    assert counter(b, "dropped_bad_signature") == 1
    assert b.router.route_to(ghost.identity.public_key, net.now) is None  # no path learned


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


def test_an_announce_signed_by_one_key_for_another_author_is_rejected() -> None:
    net = Network(config())
    a, b, c = net.line("a", "b", "c")
    honest = a.router.make(EnvelopeType.ANNOUNCE, net.now)
    author_at = 4  # version, type, flags, hop_limit
    signed = honest.signed_bytes
    signed = signed[:author_at] + GHOST.public_key + signed[author_at + 32 :]
    forged = bytes([0]) + signed + a.router.identity.sign(signed)
    assert Envelope.decode(forged).author == GHOST.public_key
    sent = net.transmissions

    net.inject("a", "b", forged)
    net.run_until_idle()

    assert counter(b, "dropped_bad_signature") == 1
    assert b.router.route_to(GHOST.public_key, net.now) is None
    assert c.router.route_to(GHOST.public_key, net.now) is None
    assert net.transmissions - sent == 1


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


# -- status ------------------------------------------------------------------------------


def test_status_reports_routes_counters_and_bounded_caches() -> None:
    net = Network(config(route_ttl=90.0))
    a, b, c = net.line("a", "b", "c")

    status = a.router.status(net.now)

    assert json.loads(json.dumps(status)) == status
    peer = encode_peer_id
    assert [(r["dest"], r["next_hop"], r["hops"]) for r in status["routes"]] == [
        (peer(b.key), peer(b.key), 1),
        (peer(c.key), peer(b.key), 2),
    ]
    assert status["routes"][1]["expires_in"] == 90.0
    assert status["counters"]["received"] == counter(a, "received") > 0
    assert status["caches"] == {
        "seen_ids": {"size": len(a.router.seen), "bound": 1000},
        "routes": {"size": 2, "bound": 100},
        "bans": {"size": 0, "bound": RouterConfig().max_bans},
        "parked": {"size": 0, "bound": RouterConfig().max_parked},
        "redeliveries": {"size": 0, "bound": REPLAY_CAPACITY},
    }
    assert status["bans"] == []


def test_link_up_sends_an_announce_and_the_stored_ones() -> None:
    net = Network(config())
    _, b, c = net.line("a", "b", "c")
    link = 4242
    actions = b.router.link_up(link, GHOST.public_key, net.now)
    assert all(isinstance(x, Send) and x.link == link for x in actions)
    own, table = (Envelope.decode(x.data) for x in actions if isinstance(x, Send))
    assert (own.type, own.author) == (EnvelopeType.ANNOUNCE, b.key)
    # the stored announces travel in one TABLE, each at b's distance to its author
    assert (table.type, table.author, table.hop_limit) == (EnvelopeType.TABLE, b.key, 1)
    stored = [Envelope.decode(frame) for frame in unpack_table(table.payload)]
    assert sorted((e.author, e.hops) for e in stored) == sorted(
        [(net.node("a").key, 1), (c.key, 1)]
    )
    assert all(e.type == EnvelopeType.ANNOUNCE for e in stored)


def test_the_same_scenario_sends_the_same_bytes_every_run() -> None:
    def run() -> tuple[int, list[bytes], dict[str, int]]:
        net = Network(config(announce_jitter=0.2))
        nodes = net.line("n0", "n1", "n2")
        for _ in range(5):
            net.advance(17)
            net.run_until_idle()
        net.originate("n0", data(nodes[0], net.now, nodes[2].key))
        net.run_until_idle()
        signatures = [e.signature for e in nodes[2].envelopes]
        return net.transmissions, signatures, nodes[1].router.counters

    assert run() == run()


def test_signatures_checked_ahead_in_a_batch_give_the_same_verdicts() -> None:
    """check_signatures (run in worker threads by the node) agrees with the inline check."""
    net = Network(config())
    a, b = net.line("a", "b")
    good = data(a, net.now, b.key, b"good").encode()
    forged = flip(data(a, net.now, b.key, b"forged").encode(), 60)
    garbage = b"\x00\x01 not an envelope"
    assert check_signatures([good, forged, garbage]) == [True, False, None]

    link = b.links["a"]
    for wire, verdict in zip(
        [good, forged, garbage], check_signatures([good, forged, garbage]), strict=True
    ):
        b.router.receive(link, wire, net.now, verdict)
    assert counter(b, "dropped_bad_signature") == 1
    assert counter(b, "dropped_malformed") == 1
    assert counter(b, "delivered") == 1
