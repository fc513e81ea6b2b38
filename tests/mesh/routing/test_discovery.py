"""RouterConfig.announce_radius: announces stop at the radius, farther paths are asked for."""

from __future__ import annotations

from mesh.routing.discovery import ANSWER, REQUEST
from mesh.wire.envelope import FLAG_FLOOD, DestKind, EnvelopeType
from sim.network import Network
from tests.mesh.routing.steps import config, counter, data, flip, settle, totals


def line(names: str, radius: int) -> Network:
    net = Network(config(announce_radius=radius))
    net.line(*names)
    settle(net)
    return net


def test_announces_stop_at_the_radius() -> None:
    net = line("abcdef", radius=2)
    a = net.nodes["a"]
    known = {name for name, node in net.nodes.items() if a.router.route_to(node.key, net.now)}
    assert known == {"b", "c"}
    assert a.router.last_announce is not None and a.router.last_announce.hop_limit == 2
    flat = line("abcdef", radius=0)  # the default: across the mesh
    f = flat.nodes["f"]
    assert flat.nodes["a"].router.route_to(f.key, flat.now) is not None


def test_a_room_member_announces_across_the_mesh() -> None:
    net = line("abcdef", radius=1)
    a, f = net.nodes["a"], net.nodes["f"]
    assert f.router.route_to(a.key, net.now) is None
    net.execute("a", a.router.announce_widely(True, net.now))
    net.run_until_idle()
    route = f.router.route_to(a.key, net.now)
    assert route is not None and route.hops == 5
    assert a.router.announce_widely(True, net.now) == []  # already so
    assert a.router.last_announce is not None and a.router.last_announce.hop_limit == 8


def test_a_far_destination_is_found_by_asking_and_its_traffic_waits_for_the_answer() -> None:
    net = line("abcdefg", radius=1)
    a, g = net.nodes["a"], net.nodes["g"]
    net.originate("a", data(a, net.now, g.key, b"far"))
    net.run_until_idle()
    assert g.envelopes == []  # parked at a: the rings (hop limits 2, 3) reach no one who knows g
    assert counter(a, "parked") == 1
    assert counter(a, "path_rings_sent") == 1  # one ring so far
    for _ in range(3):  # each ring waits its turn; then the whole mesh is asked
        net.advance(1.0)
        net.run_until_idle()
    assert [e.payload for e in g.envelopes] == [b"far"]
    route = a.router.route_to(g.key, net.now)
    assert route is not None and (route.next_hop, route.hops) == (net.nodes["b"].key, 6)
    assert counter(a, "paths_found") >= 1
    assert counter(a, "path_requests_sent") == 3  # ring 2, ring 3, then MAX_HOPS
    # g answers from the reverse path its request taught; and the next message just goes
    before = net.transmissions
    net.originate("a", data(a, net.now, g.key, b"again"))
    net.run_until_idle()
    assert net.transmissions - before == 6
    assert counter(a, "path_requests_sent") == 3


def test_a_ring_is_answered_by_a_node_near_the_destination_and_goes_no_farther() -> None:
    net = line("abcde", radius=2)
    a, c, e = net.nodes["a"], net.nodes["c"], net.nodes["e"]
    net.originate("a", data(a, net.now, e.key, b"near"))
    net.run_until_idle()
    assert [x.payload for x in e.envelopes] == [b"near"]
    assert counter(c, "path_requests_answered") == 1  # e is in c's neighbourhood
    assert totals(net, "path_requests_answered") == {"a": 0, "b": 0, "c": 1, "d": 0, "e": 0}
    route = a.router.route_to(e.key, net.now)
    assert route is not None and route.hops == 4


def test_a_leave_is_told_only_around_the_node_that_left() -> None:
    net = line("abcdefgh", radius=2)
    a, h = net.nodes["a"], net.nodes["h"]
    net.originate("a", data(a, net.now, h.key))  # a now routes to h through the line
    for _ in range(4):
        net.advance(1.0)
        net.run_until_idle()
    assert a.router.route_to(h.key, net.now) is not None
    received = totals(net, "received")
    net.disconnect("g", "h")
    net.run_until_idle()
    heard = {n: counter(node, "received") - received[n] for n, node in net.nodes.items()}
    assert heard["f"] == 1 and heard["e"] == 0  # g told its other neighbour, and no one else
    # f had h two links away, at the radius: no neighbour learned it from f
    assert counter(net.nodes["f"], "paths_dropped_quietly") >= 1
    assert a.router.route_to(h.key, net.now) is not None  # far away, kept until it is used


def test_traffic_that_reaches_a_broken_path_waits_there_while_the_break_asks() -> None:
    net = line("abcdefg", radius=2)
    a, e, f, g = (net.nodes[n] for n in "aefg")
    for name in "xy":
        net.add(name)
    for left, right in ("ex", "xy", "yg"):  # a longer way round: e, x, y, g
        net.connect(left, right)
    net.run_until_idle()
    net.originate("a", data(a, net.now, g.key, b"one"))
    for _ in range(4):
        net.advance(1.0)
        net.run_until_idle()
    asked = counter(a, "path_requests_sent")
    net.disconnect("f", "g")
    net.run_until_idle()
    net.originate("a", data(a, net.now, g.key, b"two"))
    for _ in range(4):
        net.advance(1.0)
        net.run_until_idle()
    assert [x.payload for x in g.envelopes] == [b"one", b"two"]
    # f told e, whose path went through it; e told no one (g was at the radius from it), so
    # "two" came as far as e, waited there, and e's ring found g round the other way
    assert counter(e, "parked") == 1
    assert counter(e, "paths_found") == 1
    assert counter(f, "parked") == 0
    assert counter(a, "path_requests_sent") == asked  # a did not ask again


def test_a_flood_flagged_try_asks_again_instead_of_flooding() -> None:
    net = line("abcdefg", radius=1)
    net.add("y")
    net.connect("c", "y")  # off the path: a flood would reach it
    net.run_until_idle()
    a, g, y = net.nodes["a"], net.nodes["g"], net.nodes["y"]
    net.originate("a", data(a, net.now, g.key, b"one"))
    for _ in range(4):
        net.advance(1.0)
        net.run_until_idle()
    asked = counter(a, "path_requests_sent")
    net.originate("a", data(a, net.now, g.key, b"two", flags=FLAG_FLOOD))
    for _ in range(4):
        net.advance(1.0)
        net.run_until_idle()
    assert [x.payload for x in g.envelopes] == [b"one", b"two"]
    assert counter(a, "path_asked_again") == 1
    assert counter(a, "path_requests_sent") > asked
    assert counter(y, "received") > 0  # it heard the requests
    assert not [k for k in y.kept if k.envelope.type == EnvelopeType.DATA]  # but no message


def test_a_forged_or_malformed_answer_is_refused_and_teaches_no_path() -> None:
    net = Network(config(announce_radius=1, ban_threshold=1e9))  # b stays linked
    net.line("a", "b", "c")
    settle(net)
    a, b, c = net.nodes["a"], net.nodes["b"], net.nodes["c"]
    ghost = Network(config()).add("ghost")
    announce = ghost.router.make(EnvelopeType.ANNOUNCE, net.now).with_hops(1).encode()
    forged = flip(announce, 60)  # in the signed part: the signature no longer holds
    now = net.now
    c_heard = counter(c, "received")
    for payload in (ANSWER + forged, ANSWER + b"\x01\x02", b"\x07", ANSWER + announce[:-1]):
        answer = b.router.make(
            EnvelopeType.PATH, now, dest_kind=DestKind.PEER, dest=a.key, payload=payload
        )
        net.inject("b", "a", answer.encode())
    not_for_a_peer = b.router.make(EnvelopeType.PATH, now, payload=REQUEST)
    net.inject("b", "a", not_for_a_peer.encode())
    net.run_until_idle()
    assert counter(a, "dropped_bad_signature") == 1
    assert counter(a, "dropped_malformed") == 4
    assert a.router.route_to(ghost.key, net.now) is None
    assert counter(c, "received") == c_heard  # nothing went on
    # a true answer, for contrast, teaches the path
    honest = ghost.router.make(EnvelopeType.ANNOUNCE, net.now).with_hops(1).encode()
    answer = b.router.make(
        EnvelopeType.PATH, now, dest_kind=DestKind.PEER, dest=a.key, payload=ANSWER + honest
    )
    net.inject("b", "a", answer.encode())
    net.run_until_idle()
    route = a.router.route_to(ghost.key, net.now)
    assert route is not None and route.hops == 2 and route.next_hop == b.key


def test_requests_for_a_destination_that_never_answers_stop_when_its_traffic_expires() -> None:
    net = line("abc", radius=1)
    a = net.nodes["a"]
    ghost = Network(config()).add("ghost")
    net.originate("a", data(a, net.now, ghost.key))
    for _ in range(40):
        net.advance(1.0)
        net.run_until_idle()
    sent = counter(a, "path_requests_sent")
    # rings at 0 and 0.4 s, then the mesh at 1 s, 3, 7, 15 and 31 s; the lot's 30 s ran out
    assert 4 <= sent <= 7
    assert counter(a, "dropped_park_expired") == 1
    for _ in range(40):
        net.advance(1.0)
        net.run_until_idle()
    assert counter(a, "path_requests_sent") == sent
    assert not a.router.discovery.wants


def test_a_node_with_a_full_table_answers_for_a_node_with_a_radius() -> None:
    radius = config(announce_radius=1)
    net = Network(config())  # b and c announce across the mesh, as before
    net.add("a", radius)
    net.add("b")
    net.add("c")
    net.add("d", radius)
    for left, right in ("ab", "bc", "cd"):
        net.connect(left, right)
    net.run_until_idle()
    settle(net)
    a, b, c, d = (net.nodes[n] for n in "abcd")
    assert b.router.route_to(d.key, net.now) is None  # d's announce stopped at c
    net.originate("a", data(a, net.now, d.key, b"mixed"))
    net.run_until_idle()
    assert [x.payload for x in d.envelopes] == [b"mixed"]
    assert counter(c, "path_requests_answered") == 1
    assert counter(d, "path_requests_answered") == 0


def test_an_answer_that_came_too_long_a_way_teaches_no_path_and_a_shorter_one_does() -> None:
    # at 20,000 nodes an answer followed the request's fastest copy back, 8 links from a node
    # 2 from the destination: the path learned was 10 links, and the message sent along it
    # died at its hop limit. Such an answer is refused; the traffic waits for a shorter one.
    net = line("ab", radius=1)
    a, b = net.nodes["a"], net.nodes["b"]
    ghost = Network(config()).add("ghost")
    net.originate("a", data(a, net.now, ghost.key, b"far"))
    net.run_until_idle()
    assert counter(a, "parked") == 1
    received = counter(b, "received")

    def answer(answerer_hops: int) -> None:
        announce = ghost.router.make(EnvelopeType.ANNOUNCE, net.now).with_hops(answerer_hops)
        path = b.router.make(
            EnvelopeType.PATH,
            net.now,
            dest_kind=DestKind.PEER,
            dest=a.key,
            payload=ANSWER + announce.encode(),
        )
        net.inject("b", "a", path.encode())  # sent by b: a counts the link it crossed
        net.run_until_idle()

    answer(8)  # 8 + the 1 link it crossed: 9 links, more than any envelope may cross
    assert counter(a, "dropped_path_too_long") == 1
    assert a.router.route_to(ghost.key, net.now) is None
    assert counter(b, "received") == received  # the message still waits at a
    assert ghost.key in a.router.discovery.wants  # and the asking goes on
    answer(7)  # 8 links: the most an envelope may cross
    route = a.router.route_to(ghost.key, net.now)
    assert route is not None and route.hops == 8
    assert counter(a, "unparked") == 1
    assert counter(b, "received") > received


def test_of_two_answers_to_one_asking_the_shorter_path_stays() -> None:
    # at 20,000 nodes a relay learned a 5-link path from one answer, then dropped it for an
    # 8-link one from a later answer through another neighbour: a message that came to it
    # over a link was sent on 9 links in all, and died one short of its destination
    net = Network(config(announce_radius=1))
    net.line("b", "a", "c")
    settle(net)
    a = net.nodes["a"]
    ghost = Network(config()).add("ghost")

    def answer(via: str, answerer_hops: int) -> None:
        announce = ghost.router.make(EnvelopeType.ANNOUNCE, net.now).with_hops(answerer_hops)
        path = net.nodes[via].router.make(
            EnvelopeType.PATH,
            net.now,
            dest_kind=DestKind.PEER,
            dest=a.key,
            payload=ANSWER + announce.encode(),
        )
        net.inject(via, "a", path.encode())
        net.run_until_idle()

    def path() -> tuple[bytes, int]:
        route = a.router.route_to(ghost.key, net.now)
        assert route is not None
        return route.next_hop, route.hops

    answer("b", 4)
    assert path() == (net.nodes["b"].key, 5)
    net.advance(0.05)
    answer("c", 7)  # the same asking's longer answer: the shorter path stays
    assert path() == (net.nodes["b"].key, 5)
    net.advance(10.0)
    answer("c", 7)  # later: ours may have broken farther on without a word, so it goes
    assert path() == (net.nodes["c"].key, 8)
