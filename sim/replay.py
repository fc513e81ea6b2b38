"""A recorded run replayed on the simulator: a fixed graph, each link's delay, who was away
when, which connections were cut, and the traffic as it was sent.

:func:`replay` takes a :class:`Trace` (what benchmarks/realmesh.py records of real processes)
and runs every node's real router through :class:`~sim.engine.Sim` on that graph, with the
engine's per-link latency set to the recorded delays. A node away is the engine's leave and
rejoin; a connection the link shaper cut goes down and comes back `redial` seconds later (a
node redials a lost link after a pause drawn from 0 to 0.25 s, mesh/runtime/transport.py).
Direct messages are PEER-addressed DATA answered by a RECEIPT, retried as chat/outbox.py
retries them (after 2 s, doubling, flagged FLOOD from the third try, at once when the sender
comes back); room messages are ROOM-addressed NOTE envelopes in one room of every node, kept
in each node's room log and swapped on link-up (sim/catchup.py). The warm start fills the
path tables as a settled mesh has them: the real run starts its clock once every link is up.

It returns, per direct message, the delay from its sending to its first delivery (None: never
delivered), and per room message the delay to each member that got it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from mesh.routing.router import Deliver
from mesh.wire.envelope import FLAG_FLOOD, DestKind, EnvelopeType
from sim.catchup import CatchUp
from sim.engine import Sim
from sim.graph import Graph
from sim.receipts import acknowledge
from sim.scenarios import Scenario

DATA, RECEIPT, NOTE = int(EnvelopeType.DATA), int(EnvelopeType.RECEIPT), int(EnvelopeType.NOTE)
INVENTORY = int(EnvelopeType.INVENTORY)
ROOM = hashlib.blake2b(b"replayed room", digest_size=32).digest()


@dataclass(frozen=True)
class Trace:
    """What happened in a run; times in seconds after its start."""

    n: int
    edges: list[tuple[int, int]]  # (u, v) with u < v, as sim.graph.Graph keeps them
    delays: list[float]  # one-way, per edge
    away: list[tuple[int, float, float]]  # (node, left, back)
    cuts: list[tuple[int, float]]  # (edge, when)
    dms: list[tuple[int, int, float]]  # (sender, recipient, sent)
    posts: list[tuple[int, float]]  # (author, sent)
    end: float
    redial: float = 0.25
    retry_after: float = 2.0
    flood_after: int = 2


@dataclass
class _Direct:
    sender: int
    recipient: int
    sent: float
    number: int
    tries: int = 0
    delivered: float | None = None
    acked: bool = False


@dataclass
class Replayed:
    """Per direct message its delay (None: lost); per room message, member -> delay."""

    dm_delays: list[float | None] = field(default_factory=list)
    post_delays: list[dict[int, float]] = field(default_factory=list)
    transmissions: int = 0


def replay(trace: Trace, seed: int = 1) -> Replayed:
    """Run `trace` on the simulator with every node's real router; what was delivered when."""
    graph = Graph(trace.n, list(trace.edges))
    sim = Sim(graph, Scenario(nodes=trace.n, end=trace.end).router_config(), seed)
    sim.latency = list(trace.delays)  # the recorded delays, not the engine's random ones
    t0 = sim.start
    keys = [r.identity.public_key for r in sim.routers]
    sim.connect_all(quiet=True)
    for router in sim.routers:
        router.tick(t0)  # the first announce is due now; the warm start stands for its flood
    catch_up = CatchUp(sim, {node: [ROOM] for node in range(trace.n)})
    directs = [_Direct(a, b, t, k) for k, (a, b, t) in enumerate(trace.dms)]
    by_env: dict[bytes, _Direct] = {}
    waiting: dict[int, list[_Direct]] = {}
    posted: dict[bytes, int] = {}  # message id -> post number
    seqs: dict[int, int] = {}
    result = Replayed(post_delays=[{} for _ in trace.posts])

    def try_send(item: _Direct) -> None:
        if item.acked or sim.now - t0 > trace.end:
            return
        if not sim.online[item.sender]:
            waiting.setdefault(item.sender, []).append(item)
            return
        item.tries += 1
        env = sim.routers[item.sender].make(
            EnvelopeType.DATA,
            sim.now,
            dest_kind=DestKind.PEER,
            dest=keys[item.recipient],
            payload=b"direct %d" % item.number,
            flags=FLAG_FLOOD if item.tries > trace.flood_after else 0,
        )
        by_env[env.message_id] = item
        sim.originate(item.sender, env)
        sim.at(sim.now + trace.retry_after * 2 ** (item.tries - 1), partial(try_send, item))

    def post(number: int, author: int) -> None:
        seq = seqs[author] = seqs.get(author, 0) + 1
        env = sim.routers[author].make(
            EnvelopeType.NOTE, sim.now, dest_kind=DestKind.ROOM, dest=ROOM, payload=b"post", seq=seq
        )
        posted[env.message_id] = number
        catch_up.keep(author, env)
        sim.originate(author, env)

    def back(node: int) -> None:
        sim.rejoin(node)
        for item in waiting.pop(node, []):
            try_send(item)

    def redial(e: int) -> None:
        u, v = graph.edges[e]
        if sim.online[u] and sim.online[v]:
            sim.link_up(e)

    def on_deliver(node: int, deliver: Deliver) -> None:
        env = deliver.envelope
        if env.type == INVENTORY:
            catch_up.answer(node, deliver.link, env)
            return
        catch_up.keep(node, env)
        if env.type == DATA and env.dest == keys[node]:
            item = directs[int(env.payload.split()[1])]
            if item.delivered is None:
                item.delivered = sim.now - t0
            acknowledge(sim, node, env)
        elif env.type == RECEIPT and env.dest == keys[node]:
            acked = by_env.get(env.payload)
            if acked is not None:
                acked.acked = True
        elif env.type == NOTE and env.message_id in posted:
            number = posted[env.message_id]
            result.post_delays[number].setdefault(node, sim.now - t0 - trace.posts[number][1])

    sim.on_deliver = on_deliver
    sim.on_link_up = catch_up.link_up
    sim.seed_routes()
    sim.start_ticks()
    for node, left, returned in trace.away:
        sim.at(t0 + left, partial(sim.leave, node))
        sim.at(t0 + returned, partial(back, node))
    for e, when in trace.cuts:
        sim.at(t0 + when, partial(sim.link_down, e))
        sim.at(t0 + when + trace.redial, partial(redial, e))
    for item in directs:
        sim.at(t0 + item.sent, partial(try_send, item))
    for number, (author, when) in enumerate(trace.posts):
        sim.at(t0 + when, partial(post, number, author))
    sim.run_until(t0 + trace.end)
    result.dm_delays = [None if d.delivered is None else d.delivered - d.sent for d in directs]
    result.transmissions = sim.transmissions
    return result


def as_dict(replayed: Replayed) -> dict[str, Any]:
    return {
        "dm_delays": replayed.dm_delays,
        "post_delays": [{str(k): v for k, v in d.items()} for d in replayed.post_delays],
        "transmissions": replayed.transmissions,
    }
