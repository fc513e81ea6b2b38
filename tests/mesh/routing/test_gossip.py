"""Tests for mesh.routing.gossip: the room topic mesh, stepped directly and through routers."""

from __future__ import annotations

import random
import struct

import pytest

from mesh.errors import EnvelopeError
from mesh.routing.gossip import Control, Forward, Gossip, GossipConfig
from mesh.routing.router import AUTO_TREE_FROM, ROOM_MODES, RouterConfig, room_mode, room_routing
from mesh.wire.envelope import DestKind, EnvelopeType
from sim.network import Network

TOPIC = bytes(range(32))
MSG = b"\x01" * 32
CFG = GossipConfig(d=3, d_lo=2, d_hi=4, d_lazy=2, heartbeat=1.0)


def peer(i: int) -> bytes:
    return bytes([i]) * 32


def gossip(links: int, config: GossipConfig = CFG, seed: int = 7) -> Gossip:
    g = Gossip(config, random.Random(seed))
    for link in range(1, links + 1):
        g.add_peer(link, peer(link))
    return g


def grafts(actions: list[Forward | Control]) -> set[int]:
    return {a.link for a in actions if isinstance(a, Control) and a.type == EnvelopeType.GRAFT}


def never_seen(msg_id: bytes) -> bool:
    return False


def test_publish_grafts_d_peers_and_forwards_to_them_only() -> None:
    g = gossip(10)
    actions = g.publish(TOPIC, MSG, b"wire", 0.0)
    mesh = g.topics[TOPIC].mesh
    assert len(mesh) == CFG.d
    assert grafts(actions) == mesh
    assert {a.link for a in actions if isinstance(a, Forward)} == mesh


def test_receive_forwards_to_mesh_peers_but_not_back_to_the_sender() -> None:
    g = gossip(10)
    actions = g.receive(TOPIC, MSG, b"wire", 5, 0.0)
    mesh = g.topics[TOPIC].mesh
    assert 5 in mesh and len(mesh) == CFG.d
    assert grafts(actions) == mesh  # the sender too: it may have sent it in answer to IWANT
    assert {a.link for a in actions if isinstance(a, Forward)} == mesh - {5}


def test_past_the_hop_limit_a_message_is_not_forwarded_or_cached() -> None:
    g = gossip(10)
    actions = g.receive(TOPIC, MSG, None, 5, 0.0)
    assert not [a for a in actions if isinstance(a, Forward)]
    assert MSG not in g.cache


def test_a_node_whose_links_all_went_down_grafts_again_before_it_publishes() -> None:
    g = gossip(6)
    g.publish(TOPIC, MSG, b"wire", 0.0)
    for link in range(1, 7):  # away: every link down, then up again before a heartbeat
        g.remove_peer(link)
    for link in range(1, 7):
        g.add_peer(link, peer(link))
    assert not g.topics[TOPIC].mesh

    actions = g.publish(TOPIC, b"\x02" * 32, b"wire 2", 0.5)
    mesh = g.topics[TOPIC].mesh
    assert len(mesh) == CFG.d and grafts(actions) == mesh
    assert {a.link for a in actions if isinstance(a, Forward)} == mesh


def test_a_copy_with_few_hops_to_spare_goes_to_every_neighbour() -> None:
    g = gossip(10, GossipConfig(d=3, d_lo=2, d_hi=4, d_lazy=2, flood_tail=2))
    plenty = g.receive(TOPIC, MSG, b"wire", 5, 0.0, spare=2)
    assert {a.link for a in plenty if isinstance(a, Forward)} == g.topics[TOPIC].mesh - {5}

    short = g.receive(TOPIC, b"\x02" * 32, b"wire 2", 5, 0.0, spare=1)
    assert {a.link for a in short if isinstance(a, Forward)} == set(range(1, 11)) - {5}
    assert g.counters["tail_flooded"] == 1


def test_graft_is_accepted_below_d_hi_and_answered_with_prune_above() -> None:
    g = gossip(10)
    g.publish(TOPIC, MSG, b"wire", 0.0)
    outsiders = sorted(set(range(1, 11)) - g.topics[TOPIC].mesh)
    refused = []
    for link in outsiders:
        actions = g.control(link, EnvelopeType.GRAFT, TOPIC, never_seen, 0.0)
        refused += [a.link for a in actions if a.type == EnvelopeType.PRUNE]
    assert len(g.topics[TOPIC].mesh) == CFG.d_hi
    assert len(refused) == len(outsiders) - (CFG.d_hi - CFG.d)


def test_graft_for_an_unknown_topic_joins_it_with_the_grafter() -> None:
    g = gossip(10)
    actions = g.control(4, EnvelopeType.GRAFT, TOPIC, never_seen, 0.0)
    mesh = g.topics[TOPIC].mesh
    assert 4 in mesh and len(mesh) == CFG.d
    assert grafts(actions) == mesh - {4}


def test_heartbeat_regrafts_a_mesh_below_d_lo_and_pruned_peers_wait_out_the_backoff() -> None:
    g = gossip(10)
    g.publish(TOPIC, MSG, b"wire", 0.0)
    first = sorted(g.topics[TOPIC].mesh)
    for link in first[:2]:
        g.control(link, EnvelopeType.PRUNE, TOPIC, never_seen, 0.0)
    assert len(g.topics[TOPIC].mesh) == 1 < CFG.d_lo
    actions = g.heartbeat(1.0)
    mesh = g.topics[TOPIC].mesh
    assert len(mesh) == CFG.d
    assert not mesh & set(first[:2])  # still in their prune backoff
    assert grafts(actions) == mesh - {first[2]}


def test_ihave_goes_to_non_mesh_peers_and_iwant_pulls_the_cached_envelope() -> None:
    g = gossip(10)
    g.publish(TOPIC, MSG, b"wire", 0.0)
    actions = g.heartbeat(1.0)
    ihave = [a for a in actions if isinstance(a, Control) and a.type == EnvelopeType.IHAVE]
    assert len(ihave) == CFG.d_lazy
    assert not {a.link for a in ihave} & g.topics[TOPIC].mesh
    assert ihave[0].payload == TOPIC + struct.pack(">H", 1) + MSG

    other = gossip(3)
    asked = other.control(1, EnvelopeType.IHAVE, ihave[0].payload, never_seen, 1.0)
    assert asked == [Control(1, EnvelopeType.IWANT, MSG)]
    # asked once: the same offer again waits for iwant_timeout
    assert other.control(2, EnvelopeType.IHAVE, ihave[0].payload, never_seen, 1.5) == []
    assert other.control(1, EnvelopeType.IHAVE, ihave[0].payload, lambda m: True, 9.0) == []

    served = g.control(ihave[0].link, EnvelopeType.IWANT, MSG, never_seen, 1.0)
    assert served == [Forward(ihave[0].link, b"wire")]


def test_message_ids_leave_the_cache_after_cache_windows_heartbeats() -> None:
    g = gossip(10)
    g.publish(TOPIC, MSG, b"wire", 0.0)
    for beat in range(1, CFG.cache_windows + 1):
        g.heartbeat(float(beat))
    assert MSG not in g.cache
    assert g.control(1, EnvelopeType.IWANT, MSG, never_seen, 9.0) == []


def test_peers_sending_invalid_traffic_are_pruned_and_ignored() -> None:
    g = gossip(10)
    g.publish(TOPIC, MSG, b"wire", 0.0)
    bad = min(g.topics[TOPIC].mesh)
    for _ in range(3):
        g.penalise(bad)
    assert g.score(peer(bad)) < CFG.graylist
    actions = g.heartbeat(1.0)
    assert bad not in g.topics[TOPIC].mesh
    assert Control(bad, EnvelopeType.PRUNE, TOPIC) in actions
    assert g.control(bad, EnvelopeType.IWANT, MSG, never_seen, 1.0) == []
    refused = g.control(bad, EnvelopeType.GRAFT, TOPIC, never_seen, 30.0)
    assert refused == [Control(bad, EnvelopeType.PRUNE, TOPIC)]


def test_first_deliveries_raise_the_score_and_win_mesh_places() -> None:
    g = gossip(10)
    for n in range(5):
        g.receive(b"\x09" * 32, bytes([n]) * 32, b"x", 7, float(n))
    assert g.score(peer(7)) > 0
    g.publish(TOPIC, MSG, b"wire", 5.0)
    assert 7 in g.topics[TOPIC].mesh


@pytest.mark.parametrize(
    ("type_", "payload"),
    [
        (EnvelopeType.GRAFT, b""),
        (EnvelopeType.PRUNE, b"\x00" * 31),
        (EnvelopeType.IWANT, b"\x00" * 33),
        (EnvelopeType.IHAVE, TOPIC + struct.pack(">H", 2) + MSG),
        (EnvelopeType.IHAVE, TOPIC + struct.pack(">H", 0)),
        (EnvelopeType.IHAVE, b""),
    ],
)
def test_malformed_control_payloads_raise(type_: EnvelopeType, payload: bytes) -> None:
    with pytest.raises(EnvelopeError):
        gossip(3).control(1, type_, payload, never_seen, 0.0)


def test_same_seed_same_actions() -> None:
    def script(seed: int) -> list[object]:
        g = gossip(12, seed=seed)
        out: list[object] = list(g.publish(TOPIC, MSG, b"wire", 0.0))
        out += g.heartbeat(1.0)
        return out

    assert script(3) == script(3)


# -- through routers -----------------------------------------------------------


def star(n: int, gossip_on: bool, **overrides: object) -> Network:
    cfg = GossipConfig(**{"d": 3, "d_lo": 2, "d_hi": 4, "d_lazy": 20, **overrides})  # type: ignore[arg-type]
    net = Network(RouterConfig(room_gossip=gossip_on, gossip=cfg, announce_jitter=0.0))
    net.add("hub")
    for i in range(n):
        net.add(f"leaf{i}")
        net.connect("hub", f"leaf{i}")
    net.advance(0)
    net.run_until_idle()
    return net


def note(net: Network, author: str) -> None:
    router = net.node(author).router
    env = router.make(EnvelopeType.NOTE, net.now, dest_kind=DestKind.ROOM, dest=TOPIC)
    net.originate(author, env)


def notes_at(net: Network) -> dict[str, int]:
    return {
        name: sum(1 for e in node.envelopes if e.type == EnvelopeType.NOTE)
        for name, node in net.nodes.items()
    }


def test_router_default_floods_room_traffic_without_gossip() -> None:
    net = star(12, gossip_on=False)
    assert net.node("hub").router.gossip is None
    before = net.transmissions
    note(net, "leaf0")
    net.run_until_idle()
    assert net.transmissions - before == 12  # leaf -> hub, hub -> 11 other leaves
    assert all(count == 1 for name, count in notes_at(net).items() if name != "leaf0")


def test_router_gossip_forwards_to_the_mesh_and_repairs_the_rest_with_ihave() -> None:
    net = star(12, gossip_on=True)
    note(net, "leaf0")
    net.run_until_idle()
    hub = net.node("hub").router
    assert hub.counters["gossip_forwarded"] == 2  # d = 3 mesh peers, one is the author
    received = notes_at(net)
    assert sum(received.values()) == 3  # hub and its two other mesh peers
    for _ in range(3):
        net.advance(1.0)
        net.run_until_idle()
    received = notes_at(net)
    assert all(count == 1 for name, count in received.items() if name != "leaf0")
    assert hub.gossip is not None and hub.gossip.counters["served_iwant"] == 9


def test_in_tree_mode_nothing_is_grafted_and_envelopes_go_where_the_router_says() -> None:
    g = gossip(10, GossipConfig(tree=True, d_lazy=10))
    published = g.publish(TOPIC, MSG, b"wire", 0.0, tree=[1, 2])
    assert published == [Forward(1, b"wire"), Forward(2, b"wire")]
    other = b"\x02" * 32
    assert g.receive(TOPIC, other, b"wire2", 3, 0.0, tree=[4]) == [Forward(4, b"wire2")]
    assert g.topics[TOPIC].mesh == set()
    beat = g.heartbeat(1.0)  # no graft, however empty the mesh: IHAVE to every neighbour
    assert not grafts(beat)
    assert {a.link for a in beat if isinstance(a, Control) and a.type == EnvelopeType.IHAVE} == set(
        range(1, 11)
    )


def test_ihave_skips_neighbours_known_to_hold_the_message() -> None:
    g = gossip(6, GossipConfig(tree=True, d_lazy=6))
    g.receive(TOPIC, MSG, b"wire", 1, 0.0, tree=[2])  # from 1, on to 2
    g.heard(MSG, 3)  # 3 sent it too
    g.remove_peer(4)
    g.add_peer(4, peer(4))  # a link by a reused id: another neighbour, which may lack it
    beat = g.heartbeat(1.0)
    told = {a.link for a in beat if isinstance(a, Control) and a.type == EnvelopeType.IHAVE}
    assert told == {4, 5, 6}
    assert g.control(5, EnvelopeType.IWANT, MSG, never_seen, 1.0) == [Forward(5, b"wire")]
    # each neighbour is told once (links are reliable streams), though the id stays offered
    # for gossip_windows heartbeats to neighbours that come up meanwhile
    g.add_peer(7, peer(7))
    beat = g.heartbeat(2.0)
    assert {a.link for a in beat if isinstance(a, Control)} == {7}


def diamond(
    tree: bool, modes: dict[str, str] | None = None, mode: str = "", tree_from: int = 0
) -> Network:
    """d - l, d - r, l - s, r - s, s - a: s is two hops from d both ways, a three.

    `mode` (a ROOM_MODES name, ``auto`` switching at `tree_from`) sets every node's room
    routing, `modes` some nodes' own.
    """
    cfg = GossipConfig(tree=True) if tree else GossipConfig()
    base = RouterConfig(room_gossip=tree, gossip=cfg, announce_jitter=0.0)
    net = Network(room_routing(mode, base, tree_from) if mode else base)
    for name in "dlrsa":
        own = (modes or {}).get(name)
        net.add(name, room_routing(own, base) if own else None)
    for one, other in [("d", "l"), ("d", "r"), ("l", "s"), ("r", "s"), ("s", "a")]:
        net.connect(one, other)
    net.advance(0)
    net.run_until_idle()
    return net


def test_a_room_envelope_goes_down_its_authors_tree_and_never_back_up() -> None:
    flooded, tree = diamond(tree=False), diamond(tree=True)
    sent = {}
    for name, net in (("flood", flooded), ("tree", tree)):
        before = net.transmissions
        note(net, "d")
        net.run_until_idle()
        sent[name] = net.transmissions - before
        assert all(count >= 1 for n, count in notes_at(net).items() if n != "d")
    # the tree: d -> l, d -> r, l -> s, r -> s, s -> a; flooding also sends s's copy back
    # up to whichever of l and r it did not come from first
    assert sent == {"tree": 5, "flood": 6}
    s = tree.node("s").router
    assert s.counters["gossip_forwarded"] == 1  # to a only: l and r are nearer to d


def test_in_tree_mode_a_copy_lost_on_the_way_comes_back_through_ihave() -> None:
    net = diamond(tree=True)
    note(net, "d")
    net.disconnect("s", "a")  # a is offline when the note passes, and back before IHAVE
    net.run_until_idle()
    net.connect("s", "a")
    net.run_until_idle()
    assert notes_at(net)["a"] == 0
    for _ in range(2):
        net.advance(1.0)
        net.run_until_idle()
    assert notes_at(net)["a"] == 1


def test_control_envelopes_must_have_hop_limit_one() -> None:
    net = star(2, gossip_on=True)
    leaf = net.node("leaf0").router
    bad = leaf.make(EnvelopeType.GRAFT, net.now, payload=TOPIC, hop_limit=2)
    net.inject("leaf0", "hub", bad.encode())
    net.run_until_idle()
    assert net.node("hub").router.counters["dropped_malformed"] == 1


def test_control_envelopes_are_dropped_when_gossip_is_off() -> None:
    net = star(2, gossip_on=False)
    leaf = net.node("leaf0").router
    graft = leaf.make(EnvelopeType.GRAFT, net.now, payload=TOPIC, hop_limit=1)
    net.inject("leaf0", "hub", graft.encode())
    net.run_until_idle()
    assert net.node("hub").router.counters["dropped_gossip_off"] == 1


def test_room_modes_name_the_router_settings() -> None:
    assert not room_routing("flood").room_gossip
    tree, auto = room_routing("tree"), room_routing("auto")
    assert tree.room_gossip and tree.gossip.tree and tree.gossip.tree_from == 0
    assert auto.room_gossip and auto.gossip.tree and auto.gossip.tree_from == AUTO_TREE_FROM
    assert [room_mode(room_routing(m)) for m in ROOM_MODES] == list(ROOM_MODES)
    assert room_mode(RouterConfig(room_gossip=True)) == "topic mesh"
    with pytest.raises(ValueError, match="room mode must be one of flood, tree, auto"):
        room_routing("gossip")


@pytest.mark.parametrize(("tree_from", "sent", "routing"), [(5, 6, "flood"), (4, 5, "tree")])
def test_auto_mode_floods_rooms_in_a_small_mesh_and_takes_the_tree_in_a_large_one(
    tree_from: int, sent: int, routing: str
) -> None:
    # each node of the diamond knows 4 destinations: under tree_from 5 it floods
    net = diamond(tree=True, mode="auto", tree_from=tree_from)
    before = net.transmissions
    note(net, "d")
    net.run_until_idle()
    assert net.transmissions - before == sent  # see the tree test above: 5, flooding 6
    assert all(count >= 1 for n, count in notes_at(net).items() if n != "d")
    rooms = net.node("s").router.status(net.now)["rooms"]
    assert rooms["mode"] == "auto" and rooms["routing"] == routing


def test_tree_and_flood_nodes_in_one_mesh_still_reach_every_member() -> None:
    # l and a flood, d, r and s take the tree: whatever the mix, every node gets the note
    net = diamond(tree=True, modes={"l": "flood", "a": "flood"})
    note(net, "d")
    net.run_until_idle()
    assert all(count >= 1 for n, count in notes_at(net).items() if n != "d")


def test_a_flood_node_drops_tree_repair_it_does_not_speak_and_counts_it() -> None:
    # a, flooding, misses a note while away; s offers it in IHAVE, which a does not speak:
    # counted, and left to the room logs' inventory swap on link-up (mesh/runtime/node.py)
    net = diamond(tree=True, modes={"a": "flood"})
    net.disconnect("s", "a")
    note(net, "d")
    net.run_until_idle()
    net.connect("s", "a")
    net.run_until_idle()
    for _ in range(2):
        net.advance(1.0)
        net.run_until_idle()
    assert net.node("a").router.counters["dropped_gossip_off"] == 1
    assert notes_at(net)["a"] == 0
