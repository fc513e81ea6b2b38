"""Tests for mesh.routing.forwarding: paths, parking and floods, through a network."""

from __future__ import annotations

from mesh.wire.envelope import FLAG_FLOOD, DestKind, EnvelopeType
from sim.network import Network
from tests.mesh.routing.steps import GHOST, config, counter, data, settle, totals

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


# -- lost paths: park, then send or flood -------------------------------------------


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
