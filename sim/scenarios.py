"""Scale scenarios on the event simulator: direct messages, room traffic, churn, and their metrics.

:func:`run` builds a random graph, runs every node's real router through
:class:`~sim.engine.Sim`, and returns a JSON-ready dict of metrics:

- direct messages between random pairs, each PEER-addressed DATA answered by a
  PEER-addressed RECEIPT; the sender retries after `retry_after` virtual
  seconds (doubling), flagged FLOOD from the third try on, and again at once
  when it comes back online (as chat/outbox.py does). Delivery ratio, delay
  (from the first moment both ends are online), and transmissions of the
  message's envelopes divided by the BFS shortest path;
- room messages (ROOM-addressed NOTE envelopes) in rooms of `room_size`
  members scattered over the graph: delivery to members, and copies received
  per member (every arrival counts, duplicates included);
- a shared note edited by `note_members` members, some of them among the nodes
  that leave (sim/catchup.py): when every member held every edit,
  counted from the later of the last return and the last edit, and whether
  their documents are byte-identical. Every node keeps room envelopes in the
  product's RoomLog and swaps inventories on link-up, as mesh/runtime/node.py does;
- path-table and seen-cache sizes per node, gossip control traffic, wall time.

``run(scenario, parts=2)`` spreads the nodes over two processes
(:func:`~sim.parts.play_parts`): each plays its own nodes' routers,
hooks and logs, and the parts' observations are merged into the same metrics.
A run is deterministic given its seed and its number of parts.
"""

from __future__ import annotations

import gc
import hashlib
import random
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

from mesh.routing.gossip import GossipConfig
from mesh.routing.router import Deliver, RouterConfig
from mesh.wire.envelope import DEST_AT, FLAG_FLOOD, DestKind, EnvelopeType
from sim.catchup import CatchUp, SharedNote
from sim.engine import Sim
from sim.graph import Graph
from sim.metrics import DirectMessage, RoomMessage, measure, memory_kib
from sim.parts import play_parts, split
from sim.receipts import acknowledge

DATA, RECEIPT, NOTE = int(EnvelopeType.DATA), int(EnvelopeType.RECEIPT), int(EnvelopeType.NOTE)
INVENTORY = int(EnvelopeType.INVENTORY)

#: where an encoded ROOM-addressed envelope names its room
_ROOM_AT = slice(DEST_AT, DEST_AT + 32)


@dataclass(frozen=True)
class Scenario:
    """One run's parameters; times are virtual seconds after the start."""

    nodes: int = 100
    churn: float = 0.0  # fraction of nodes that leave once and come back
    gossip: bool = False
    seed: int = 1
    mean_degree: float = 6.0
    latency: tuple[float, float] = (0.005, 0.030)
    loss: float = 0.0
    direct: int = 100  # direct messages between random pairs
    rooms: int = 4
    room_size: int = 50
    room_messages: int = 5  # per room
    traffic_start: float = 5.0
    traffic_end: float = 35.0
    churn_start: float = 5.0
    churn_end: float = 30.0
    away: tuple[float, float] = (5.0, 20.0)  # how long a leaving node stays away
    end: float = 80.0
    retry_after: float = 2.0
    flood_after: int = 2  # unreceipted tries before the next one is flagged FLOOD
    note_members: int = 20  # members editing one shared note (0: no note)
    note_offline: int = 6  # of them, how many are picked among the nodes that leave
    note_edits: int = 3  # edits per member, at random times between traffic start and end
    catch_up: bool = True  # room logs swap vectors on link-up (sim/catchup.py)
    warm_start: bool = True  # seed path tables from BFS instead of a first announce round
    local_departures: bool = False  # RouterConfig.local_departures
    announce_radius: int = 0  # RouterConfig.announce_radius (0: announces cross the mesh)
    room_hop_reserve: int = 3  # RouterConfig.room_hop_reserve (0: no hop marks)
    gossip_config: GossipConfig = field(default_factory=GossipConfig)

    def router_config(self) -> RouterConfig:
        # one scenario is shorter than an announce interval: paths come from the warm start
        # (or the first announce round), link-ups and reverse paths, as in a settled mesh
        return RouterConfig(
            seen_capacity=20_000,
            seen_ttl=120.0,
            max_routes=max(10_000, 2 * self.nodes),
            route_ttl=2 * self.end,
            announce_interval=2 * self.end,
            announce_jitter=0.1,
            max_age=3600.0,
            max_future=60.0,
            room_gossip=self.gossip,
            gossip=self.gossip_config,
            local_departures=self.local_departures,
            announce_radius=self.announce_radius,
            room_hop_reserve=self.room_hop_reserve,
        )


def _id(data: bytes) -> bytes:
    return hashlib.blake2b(data[1:-64], digest_size=32).digest()


def run(scenario: Scenario, parts: int = 1) -> dict[str, Any]:
    """Run one scenario, its nodes spread over `parts` processes, and return its metrics."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    wall = time.perf_counter()
    cpu = time.process_time()
    memory0 = memory_kib()
    sc = scenario
    rng = random.Random(sc.seed)
    graph = Graph.random(sc.nodes, sc.mean_degree, rng)
    sim = Sim(graph, sc.router_config(), sc.seed, latency=sc.latency, loss=sc.loss)
    t0 = sim.start
    keys = [r.identity.public_key for r in sim.routers]

    # -- bootstrap (the warm start's tables are filled by each part: see play) -----
    sim.connect_all(quiet=True)
    if sc.warm_start:
        for router in sim.routers:
            router.tick(t0)  # the first announce is due now; a warm start skips its flood

    # -- churn schedule: each leaving node is away for one interval --------------
    away: dict[int, tuple[float, float]] = {}

    def rejoin(node: int) -> None:
        _rejoin(node)  # defined below, with the direct messages it hands on

    if sc.churn:
        for node in rng.sample(range(sc.nodes), round(sc.churn * sc.nodes)):
            leave = rng.uniform(sc.churn_start, sc.churn_end)
            away[node] = (leave, leave + rng.uniform(*sc.away))
            sim.at(t0 + away[node][0], partial(sim.leave, node))
            sim.at(t0 + away[node][1], partial(rejoin, node))

    def online_at(node: int, t: float) -> bool:
        gap = away.get(node)
        return gap is None or not gap[0] <= t < gap[1]

    def both_online_from(a: int, b: int, t: float) -> float:
        for _ in range(3):
            for node in (a, b):
                if not online_at(node, t):
                    t = away[node][1]
        return t

    # -- direct messages ---------------------------------------------------------
    directs: list[DirectMessage] = []
    by_env: dict[bytes, DirectMessage] = {}
    pending: dict[int, list[DirectMessage]] = {}  # sender -> items waiting for a retry on return
    dist_cache: dict[int, list[int]] = {}

    def try_send(item: DirectMessage) -> None:
        if not sim.mine(item.sender) or item.acked is not None or sim.now - t0 > sc.end - 1.0:
            return
        if not sim.online[item.sender]:
            pending.setdefault(item.sender, []).append(item)
            return
        item.tries += 1
        router = sim.routers[item.sender]
        env = router.make(
            EnvelopeType.DATA,
            sim.now,
            dest_kind=DestKind.PEER,
            dest=keys[item.recipient],
            payload=b"direct %d" % item.number,  # every try carries the item, as the outbox does
            # as chat/outbox.py: flagged FLOOD once `flood_after` tries went unreceipted
            flags=FLAG_FLOOD if item.tries > sc.flood_after else 0,
        )
        by_env[env.message_id] = item
        sim.originate(item.sender, env)
        backoff = sc.retry_after * 2 ** (item.tries - 1)
        sim.at(sim.now + backoff, lambda: try_send(item))

    def _rejoin(node: int) -> None:
        sim.rejoin(node)
        for item in pending.pop(node, []):
            try_send(item)

    for _ in range(sc.direct):
        a, b = rng.sample(range(sc.nodes), 2)
        sent = rng.uniform(sc.traffic_start, sc.traffic_end)
        if a not in dist_cache:
            dist_cache[a] = graph.distances(a)
        item = DirectMessage(
            a, b, sent, both_online_from(a, b, sent), dist_cache[a][b], len(directs)
        )
        directs.append(item)
        sim.at(t0 + sent, partial(try_send, item))

    # -- rooms -----------------------------------------------------------------
    room_ids = [hashlib.blake2b(b"room %d" % r, digest_size=32).digest() for r in range(sc.rooms)]
    room_of = {room_id: r for r, room_id in enumerate(room_ids)}
    members = [set(rng.sample(range(sc.nodes), min(sc.room_size, sc.nodes))) for _ in room_ids]
    room_msgs: dict[bytes, RoomMessage] = {}  # those this part's nodes published
    arrivals: dict[bytes, int] = {}  # message id -> arrivals at members played here
    firsts: dict[bytes, dict[int, float]] = {}  # message id -> member played here -> delivery

    room_seq: dict[tuple[int, int], int] = {}  # (author, room) -> last seq, as room logs need

    def publish(room: int, author: int) -> None:
        if not sim.online[author] or not sim.mine(author):
            return
        seq = room_seq[author, room] = room_seq.get((author, room), 0) + 1
        env = sim.routers[author].make(
            EnvelopeType.NOTE,
            sim.now,
            dest_kind=DestKind.ROOM,
            dest=room_ids[room],
            payload=b"note update",
            seq=seq,
        )
        room_msgs[env.message_id] = RoomMessage(room, author, sim.now - t0)
        firsts.setdefault(env.message_id, {})[author] = sim.now - t0
        if catch_up is not None:
            catch_up.keep(author, env)
        sim.originate(author, env)

    for room in range(sc.rooms):
        for _ in range(sc.room_messages):
            author = rng.choice(sorted(members[room]))
            when = rng.uniform(sc.traffic_start, sc.traffic_end)
            sim.at(t0 + when, partial(publish, room, author))

    # -- the shared note: edited by members, some of them away for a while ---------
    note_rng = random.Random(f"{sc.seed}/note")  # its own stream: the rest stays comparable
    note: SharedNote | None = None
    if sc.note_members:
        leaving = sorted(away)
        staying = sorted(set(range(sc.nodes)) - set(leaving))
        offline = note_rng.sample(leaving, min(sc.note_offline, len(leaving)))
        others = note_rng.sample(staying, min(sc.note_members - len(offline), len(staying)))
        note_room = hashlib.blake2b(b"shared note", digest_size=32).digest()
        note = SharedNote(note_room, sorted(offline + others), sc.seed, sc.note_edits)

        def edit(member: int) -> None:
            assert note is not None
            if not sim.mine(member):
                return
            env = note.edit(sim, member)
            if catch_up is not None:
                catch_up.keep(member, env)
            sim.originate(member, env)  # away: it goes nowhere now, and out on the next link-up

        for member in note.members:
            for _ in range(sc.note_edits):
                when = note_rng.uniform(sc.traffic_start, sc.traffic_end)
                sim.at(t0 + when, partial(edit, member))

    interests: dict[int, list[bytes]] = {}
    for room, group in enumerate(members):
        for m in group:
            interests.setdefault(m, []).append(room_ids[room])
    if note is not None:
        for m in note.members:
            interests.setdefault(m, []).append(note.room)
    catch_up = CatchUp(sim, interests) if sc.catch_up else None
    if catch_up is not None:
        catch_up.start_refresh(t0, t0 + sc.end)
    if sc.announce_radius:
        # room members announce across the mesh (their rooms' trees need it); as with the
        # first announce, a warm start drops the flood, and a cold one announces at its tick
        for member in sorted(interests):
            sim.routers[member].announce_widely(True, sim.now)

    # -- observation hooks -------------------------------------------------------
    sent_data: dict[bytes, int] = {}  # DATA message id -> transmissions by this part's nodes

    def on_send(node: int, link: int, data: bytes) -> None:
        if data[2] == DATA:
            message_id = _id(data)
            sent_data[message_id] = sent_data.get(message_id, 0) + 1

    def on_arrive(node: int, data: bytes) -> None:
        if data[2] == NOTE:
            room = room_of.get(data[_ROOM_AT])
            if room is not None and node in members[room]:
                message_id = _id(data)
                arrivals[message_id] = arrivals.get(message_id, 0) + 1

    def on_deliver(node: int, deliver: Deliver) -> None:
        env = deliver.envelope
        if catch_up is not None:
            if env.type == INVENTORY:
                catch_up.answer(node, deliver.link, env)
                return
            catch_up.keep(node, env)
        if note is not None and env.dest_kind == DestKind.ROOM and env.dest == note.room:
            if node in note.applied:
                note.deliver(sim, node, env)
            return
        if env.type == DATA and env.dest == keys[node]:
            item = directs[int(env.payload.split()[1])]  # b"direct N"
            if item.delivered is None:
                item.delivered = sim.now - t0
            acknowledge(sim, node, env)
        elif env.type == RECEIPT and env.dest == keys[node]:
            acked = by_env.get(env.payload)
            if acked is not None and acked.acked is None:
                acked.acked = sim.now - t0
        elif env.type == NOTE:
            room = room_of.get(env.dest)
            if room is not None and node in members[room]:
                firsts.setdefault(env.message_id, {}).setdefault(node, sim.now - t0)

    sim.on_send, sim.on_arrive, sim.on_deliver = on_send, on_arrive, on_deliver
    if catch_up is not None:
        sim.on_link_up = catch_up.link_up

    owner = split(graph, parts, sim.latency)
    build_wall = time.perf_counter() - wall

    def play(part: int, peers: dict[int, Any]) -> dict[str, Any]:
        """Play this part's nodes to the end; what they saw, for the merge below."""
        started = time.perf_counter()
        sim.partition(owner, part)
        if sc.warm_start:
            sim.seed_routes()
            sim.start_ticks()
        else:
            sim.start_ticks(spread=sc.traffic_start * 0.6)
        warm = time.perf_counter() - started
        # the warm-started tables and caches live through the run: keep the cyclic garbage
        # collector from walking them again and again (8% of a 500-node run)
        gc.collect()
        gc.freeze()
        try:
            if peers:
                sim.run_part(t0 + sc.end, peers)
            else:
                sim.run_until(t0 + sc.end)
        finally:
            gc.unfreeze()
        played = [r for i, r in enumerate(sim.routers) if sim.mine(i)]
        counters: dict[str, int] = {}
        for r in played:
            for name, value in r.counters.items():
                counters[name] = counters.get(name, 0) + value
        return {
            "directs": [(d.tries, d.delivered, d.acked) for d in directs],
            "data_ids": {mid: item.number for mid, item in by_env.items()},
            "sent_data": sent_data,
            "room_msgs": room_msgs,
            "arrivals": arrivals,
            "firsts": firsts,
            "note": note.observed(sim) if note is not None else None,
            "catch_up": (catch_up.inventories, catch_up.handed_on, len(catch_up.logs))
            if catch_up is not None
            else None,
            "routes": [len(r.routes) for r in played],
            "seen": [len(r.seen) for r in played],
            "counters": counters,
            "mesh_sizes": [
                len(t.mesh) for r in played if r.gossip for t in r.gossip.topics.values()
            ],
            "topics": [len(r.gossip.topics) for r in played if r.gossip],
            "sent_by_type": sim.sent_by_type,
            "cut": sim.cut,
            "lost": sim.lost,
            "events": sim.events,
            "warm_seconds": warm,
            # a child's clock starts at its fork; this process's counts the build too
            "cpu_seconds": time.process_time() - (cpu if part == 0 else 0.0),
            "memory_kib": memory_kib(),
        }

    seen_by = play_parts(parts, play)
    run_wall = time.perf_counter() - wall
    run_cpu = sum(o["cpu_seconds"] for o in seen_by)
    memory = sum(o["memory_kib"] for o in seen_by) - memory0
    return measure(
        asdict(sc),
        graph,
        sim.latency,
        directs,
        members,
        online_at,
        note,
        away,
        t0,
        seen_by,
        {
            "parts": parts,  # processes the nodes were spread over
            "wall_seconds": round(run_wall, 2),
            # every part's CPU time together; wall time suffers when other work shares the cores
            "cpu_seconds": round(run_cpu, 2),
            "build_seconds": round(build_wall + seen_by[0]["warm_seconds"], 2),
            "rss_delta_kib": memory,  # proportional set sizes, summed over the parts
            "rss_kib_per_node": round(memory / graph.n, 1),
        },
    )


def quick(nodes: int = 100, **kw: Any) -> dict[str, Any]:
    """Run a scenario with keyword overrides (handy from a REPL or a test)."""
    return run(replace(Scenario(nodes=nodes), **kw))
