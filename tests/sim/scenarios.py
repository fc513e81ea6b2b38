"""Scale scenarios on the event simulator: direct messages, room traffic, churn, and their metrics.

:func:`run` builds a random graph, runs every node's real router through
:class:`~tests.sim.engine.Sim`, and returns a JSON-ready dict of metrics:

- direct messages between random pairs, each PEER-addressed DATA answered by a
  PEER-addressed RECEIPT; the sender retries after `retry_after` virtual
  seconds (doubling), flagged FLOOD from the third try on, and again at once
  when it comes back online (as mesh/outbox.py does). Delivery ratio, delay
  (from the first moment both ends are online), and transmissions of the
  message's envelopes divided by the BFS shortest path;
- room messages (ROOM-addressed NOTE envelopes) in rooms of `room_size`
  members scattered over the graph: delivery to members, and copies received
  per member (every arrival counts, duplicates included);
- a shared note edited by `note_members` members, some of them among the nodes
  that leave (tests/sim/catchup.py): when every member held every edit,
  counted from the later of the last return and the last edit, and whether
  their documents are byte-identical. Every node keeps room envelopes in the
  product's RoomLog and swaps inventories on link-up, as mesh/node.py does;
- path-table and seen-cache sizes per node, gossip control traffic, wall time.
"""

from __future__ import annotations

import gc
import hashlib
import os
import random
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mesh.envelope import FLAG_FLOOD, DestKind, EnvelopeType
from mesh.gossip import GossipConfig
from mesh.router import Deliver, RouterConfig
from tests.sim.catchup import CatchUp, SharedNote
from tests.sim.engine import Graph, Sim

DATA, RECEIPT, NOTE = int(EnvelopeType.DATA), int(EnvelopeType.RECEIPT), int(EnvelopeType.NOTE)
INVENTORY = int(EnvelopeType.INVENTORY)


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
    catch_up: bool = True  # room logs swap vectors on link-up (tests/sim/catchup.py)
    warm_start: bool = True  # seed path tables from BFS instead of a first announce round
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
        )


@dataclass
class _Direct:
    sender: int
    recipient: int
    sent: float
    reachable: float
    shortest: int
    number: int = 0
    tries: int = 0
    transmissions: int = 0
    delivered: float | None = None
    acked: float | None = None


@dataclass
class _RoomMsg:
    room: int
    author: int
    sent: float
    copies: int = 0
    delivered: dict[int, float] = field(default_factory=dict)


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _id(data: bytes) -> bytes:
    return hashlib.blake2b(data[1:-64], digest_size=32).digest()


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 4),
        "median": round(statistics.median(ordered), 4),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
        "max": round(ordered[-1], 4),
    }


def run(scenario: Scenario) -> dict[str, Any]:
    """Run one scenario and return its metrics."""
    wall = time.perf_counter()
    cpu = time.process_time()
    rss0 = _rss_kib()
    sc = scenario
    rng = random.Random(sc.seed)
    graph = Graph.random(sc.nodes, sc.mean_degree, rng)
    sim = Sim(graph, sc.router_config(), sc.seed, latency=sc.latency, loss=sc.loss)
    t0 = sim.start
    keys = [r.identity.public_key for r in sim.routers]

    # -- bootstrap -------------------------------------------------------------
    sim.connect_all(quiet=True)
    if sc.warm_start:
        for i, router in enumerate(sim.routers):
            router.tick(t0)  # the first announce is due now; a warm start skips its flood
            del i
        sim.seed_routes()
        sim.start_ticks()
    else:
        sim.start_ticks(spread=sc.traffic_start * 0.6)
    build_wall = time.perf_counter() - wall

    # -- churn schedule: each leaving node is away for one interval --------------
    away: dict[int, tuple[float, float]] = {}
    if sc.churn:
        for node in rng.sample(range(sc.nodes), round(sc.churn * sc.nodes)):
            leave = rng.uniform(sc.churn_start, sc.churn_end)
            away[node] = (leave, leave + rng.uniform(*sc.away))
            sim.at(t0 + away[node][0], lambda n=node: sim.leave(n))
            sim.at(t0 + away[node][1], lambda n=node: _rejoin(n))

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
    directs: list[_Direct] = []
    by_env: dict[bytes, _Direct] = {}
    pending: dict[int, list[_Direct]] = {}  # sender -> items waiting for a retry on return
    dist_cache: dict[int, list[int]] = {}

    def try_send(item: _Direct) -> None:
        if item.acked is not None or sim.now - t0 > sc.end - 1.0:
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
            # as mesh/outbox.py: flagged FLOOD once `flood_after` tries went unreceipted
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
        item = _Direct(a, b, sent, both_online_from(a, b, sent), dist_cache[a][b], len(directs))
        directs.append(item)
        sim.at(t0 + sent, lambda item=item: try_send(item))

    # -- rooms -----------------------------------------------------------------
    room_ids = [hashlib.blake2b(b"room %d" % r, digest_size=32).digest() for r in range(sc.rooms)]
    members = [set(rng.sample(range(sc.nodes), min(sc.room_size, sc.nodes))) for _ in room_ids]
    room_msgs: dict[bytes, _RoomMsg] = {}

    room_seq: dict[tuple[int, int], int] = {}  # (author, room) -> last seq, as room logs need

    def publish(room: int, author: int) -> None:
        if not sim.online[author]:
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
        msg = room_msgs[env.message_id] = _RoomMsg(room, author, sim.now - t0)
        msg.delivered[author] = sim.now - t0
        if catch_up is not None:
            catch_up.keep(author, env)
        sim.originate(author, env)

    for room in range(sc.rooms):
        for _ in range(sc.room_messages):
            author = rng.choice(sorted(members[room]))
            when = rng.uniform(sc.traffic_start, sc.traffic_end)
            sim.at(t0 + when, lambda r=room, a=author: publish(r, a))

    # -- the shared note: edited by members, some of them away for a while ---------
    note_rng = random.Random(f"{sc.seed}/note")  # its own stream: the rest stays comparable
    note: SharedNote | None = None
    if sc.note_members:
        leaving = sorted(away)
        staying = sorted(set(range(sc.nodes)) - set(leaving))
        offline = note_rng.sample(leaving, min(sc.note_offline, len(leaving)))
        others = note_rng.sample(staying, min(sc.note_members - len(offline), len(staying)))
        note_room = hashlib.blake2b(b"shared note", digest_size=32).digest()
        note = SharedNote(note_room, sorted(offline + others), sc.seed)

        def edit(member: int) -> None:
            assert note is not None
            env = note.edit(sim, member, note_rng)
            if catch_up is not None:
                catch_up.keep(member, env)
            sim.originate(member, env)  # away: it goes nowhere now, and out on the next link-up

        for member in note.members:
            for _ in range(sc.note_edits):
                when = note_rng.uniform(sc.traffic_start, sc.traffic_end)
                sim.at(t0 + when, lambda m=member: edit(m))

    interests: dict[int, list[bytes]] = {}
    for room, group in enumerate(members):
        for m in group:
            interests.setdefault(m, []).append(room_ids[room])
    if note is not None:
        for m in note.members:
            interests.setdefault(m, []).append(note.room)
    catch_up = CatchUp(sim, interests) if sc.catch_up else None

    # -- observation hooks -------------------------------------------------------
    def on_send(node: int, link: int, data: bytes) -> None:
        if data[2] == DATA:
            item = by_env.get(_id(data))
            if item is not None:
                item.transmissions += 1

    def on_arrive(node: int, data: bytes) -> None:
        if data[2] == NOTE:
            msg = room_msgs.get(_id(data))
            if msg is not None and node in members[msg.room]:
                msg.copies += 1

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
            item = by_env.get(env.message_id)
            if item is None:
                return
            if item.delivered is None:
                item.delivered = sim.now - t0
            receipt = sim.routers[node].make(
                EnvelopeType.RECEIPT,
                sim.now,
                dest_kind=DestKind.PEER,
                dest=env.author,
                payload=env.message_id,
            )
            sim.originate(node, receipt)
        elif env.type == RECEIPT and env.dest == keys[node]:
            item = by_env.get(env.payload)
            if item is not None and item.acked is None:
                item.acked = sim.now - t0
        elif env.type == NOTE:
            msg = room_msgs.get(env.message_id)
            if msg is not None and node in members[msg.room]:
                msg.delivered.setdefault(node, sim.now - t0)

    sim.on_send, sim.on_arrive, sim.on_deliver = on_send, on_arrive, on_deliver
    if catch_up is not None:
        sim.on_link_up = catch_up.link_up

    # the warm-started tables and caches live through the run: keep the cyclic garbage
    # collector from walking them again and again (8% of a 500-node run)
    gc.collect()
    gc.freeze()
    try:
        sim.run_until(t0 + sc.end)
    finally:
        gc.unfreeze()
    run_wall = time.perf_counter() - wall
    run_cpu = time.process_time() - cpu
    rss1 = _rss_kib()

    # -- metrics ---------------------------------------------------------------
    mean_latency = statistics.fmean(sim.latency)
    delivered = [d for d in directs if d.delivered is not None]
    delays = [max(0.0, d.delivered - d.reachable) for d in delivered]  # type: ignore[operator]
    ratios = [d.transmissions / d.shortest for d in delivered if d.shortest > 0]
    room_delivery = []
    room_delivery_stayed = []
    copies = []
    for msg in room_msgs.values():
        group = members[msg.room] - {msg.author}
        got = sum(1 for m in group if m in msg.delivered)
        room_delivery.append(got / len(group))
        # members online from publication until well after it: churn cannot excuse a miss
        stayed = [m for m in group if all(online_at(m, msg.sent + s) for s in (0, 5, 10, 15))]
        if stayed:
            room_delivery_stayed.append(sum(1 for m in stayed if m in msg.delivered) / len(stayed))
        receivers = len(msg.delivered) - 1
        if receivers:
            copies.append(msg.copies / receivers)
    routes = [len(r.routes) for r in sim.routers]
    counters: dict[str, int] = {}
    for r in sim.routers:
        for name, value in r.counters.items():
            counters[name] = counters.get(name, 0) + value
    seen = [len(r.seen) for r in sim.routers]
    out: dict[str, Any] = {
        "scenario": {k: v for k, v in asdict(sc).items() if k != "gossip_config"},
        "mode": "gossip" if sc.gossip else "flood",
        "graph": {
            "nodes": graph.n,
            "links": len(graph.edges),
            "mean_degree": round(2 * len(graph.edges) / graph.n, 2),
            "max_degree": max(len(a) for a in graph.adjacency),
            "mean_link_latency_ms": round(1000 * mean_latency, 2),
        },
        "direct": {
            "sent": len(directs),
            "delivered": len(delivered),
            "delivery_ratio": round(len(delivered) / len(directs), 4) if directs else None,
            "acked": sum(1 for d in directs if d.acked is not None),
            "delay_ms": _summary([1000 * d for d in delays]),
            "delay_in_link_latencies": _summary([d / mean_latency for d in delays]),
            "shortest_path_hops": _summary([float(d.shortest) for d in directs]),
            "tries": _summary([float(d.tries) for d in directs]),
            "flooded_share": round(sum(1 for d in directs if d.tries >= 2) / len(directs), 4)
            if directs
            else None,
            "transmissions_per_shortest_path": _summary(ratios),
            "transmissions_over_shortest_total": round(
                sum(d.transmissions for d in delivered)
                / max(1, sum(d.shortest for d in delivered)),
                3,
            ),
        },
        "room": {
            "messages": len(room_msgs),
            "room_size": sc.room_size,
            "delivery_ratio": _summary(room_delivery),
            "delivery_ratio_members_online_throughout": _summary(room_delivery_stayed),
            "copies_per_member": _summary(copies),
        },
        "note": _note_metrics(note, away, t0) if note is not None else None,
        "catch_up": {
            "inventories": catch_up.inventories,
            "handed_on": catch_up.handed_on,
            "room_logs": len(catch_up.logs),
        }
        if catch_up is not None
        else None,
        "tables": {
            "routes_per_node": _summary([float(x) for x in routes]),
            "seen_ids_per_node": _summary([float(x) for x in seen]),
        },
        "traffic": {
            "transmissions": sim.transmissions,
            "by_type": {
                (EnvelopeType(k).name if k in EnvelopeType._value2member_map_ else str(k)): v
                for k, v in sorted(sim.sent_by_type.items())
            },
            "lost_in_flight_on_link_down": sim.cut,
            "lost_to_link_loss": sim.lost,
            "router_counters": dict(sorted(counters.items())),
            "events": sim.events,
        },
        "cost": {
            "wall_seconds": round(run_wall, 2),
            "cpu_seconds": round(run_cpu, 2),  # wall time suffers when other work shares the cores
            "build_seconds": round(build_wall, 2),
            "rss_delta_kib": rss1 - rss0,
            "rss_kib_per_node": round((rss1 - rss0) / graph.n, 1),
        },
    }
    if sc.gossip:
        mesh_sizes = [
            len(t.mesh) for r in sim.routers if r.gossip for t in r.gossip.topics.values()
        ]
        out["gossip"] = {
            "mesh_peers_per_topic": _summary([float(x) for x in mesh_sizes]),
            "topics_per_node": _summary(
                [float(len(r.gossip.topics)) for r in sim.routers if r.gossip]
            ),
            "config": asdict(sc.gossip_config),
        }
    return out


def _note_metrics(
    note: SharedNote, away: dict[int, tuple[float, float]], t0: float
) -> dict[str, Any]:
    """When every member held every edit, counted from the later of last return and last edit."""
    returns = [away[m][1] for m in note.members if m in away]
    last_return = max(returns, default=0.0)
    last_edit = note.last_edit - t0
    converged = None if note.converged_at is None else note.converged_at - t0
    after = None if converged is None else converged - max(last_return, last_edit)
    return {
        "members": len(note.members),
        "members_away": len(returns),
        "edits": note.edits,
        "last_return_s": round(last_return, 3),
        "last_edit_s": round(last_edit, 3),
        "converged": converged is not None,
        "converged_at_s": None if converged is None else round(converged, 3),
        "converged_after_s": None if after is None else round(max(0.0, after), 3),
        "identical": note.identical(),
        "text_bytes": len(note.text(note.members[0]).encode()),
    }


def quick(nodes: int = 100, **kw: Any) -> dict[str, Any]:
    """Run a scenario with keyword overrides (handy from a REPL or a test)."""
    return run(replace(Scenario(nodes=nodes), **kw))
