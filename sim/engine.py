"""A deterministic discrete-event simulator running the real router of every node.

Time is virtual (an event heap); nothing touches a socket, a thread or the
wall clock. Each undirected link has its own latency (drawn once from the
seeded rng) and a loss probability per transmission; messages on one link
arrive in order. Nodes can leave (every link goes down, in-flight messages are
lost) and return (links to online neighbours come up again). Given the same
seed, a run sends the same bytes in the same order.

Link ids: edge ``e`` between nodes ``u < v`` is link ``2e`` at ``u`` and
``2e + 1`` at ``v``.

Hooks let a scenario observe traffic without touching the routers:
``on_send(node, link, data)`` for each transmission put on a link,
``on_arrive(node, data)`` just before a router receives bytes, and
``on_deliver(node, deliver)`` for each :class:`~mesh.routing.router.Deliver`, and
``on_link_up(node, link)`` after a (not quiet) link-up, at both ends.

Partitions: :meth:`Sim.partition` makes this copy of a simulation play only
some of the nodes (its *part*), for runs spread over processes
(:func:`sim.parts.play_parts`). Every part holds the whole graph and replays the same
scheduled calls, so link states and churn stay the same everywhere; only the
routers it owns handle events, and frames for another part's nodes wait in
:attr:`Sim.outgoing` until the parts swap them. The parts advance in windows
no longer than the least latency of a link between two parts (a conservative
lookahead): nothing sent within a window can arrive inside it. A run is
deterministic given its seed and its partition, and gives what one process
gives unless two events at one node fall at the very same virtual time (ties
break by order of scheduling, which a partition changes). Lost frames are
drawn per sending node, so link loss does not depend on the partition.

Signatures: a node checks an envelope's signature once, when it first gets
it; the simulator, which plays every node on one machine, checks each
distinct frame (hop count aside) once and gives every router that asks the
same verdict (each router's ``check_signature``), which is what the router's
own check would say; ``share_signature_checks=False`` makes every router
check for itself.
"""

from __future__ import annotations

import heapq
import itertools
import marshal
import math
import random
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from mesh.routing.router import Action, Close, Deliver, Keep, Route, Router, RouterConfig, Send
from mesh.wire.envelope import wire_signature_holds
from mesh.wire.identity import Identity
from sim.graph import Graph
from sim.network import START, seed_for

__all__ = ["MAX_VERDICTS", "Crossing", "Graph", "Sim"]

_ARRIVE, _TICK, _CALL = 0, 1, 2

#: a frame on its way to another part: (arrival, node, link id there, link epoch, bytes),
#: with None for bytes when the sender closed the link
Crossing = tuple[float, int, int, int, "bytes | None"]

#: signature verdicts remembered at most (then forgotten all at once)
MAX_VERDICTS = 200_000


class Sim:
    """Routers on a graph, stepped by a virtual clock.

    `loss` is the probability that one transmission is lost; `latency` the
    (low, high) range, in seconds, of each link's one-way delay.
    """

    def __init__(
        self,
        graph: Graph,
        config: RouterConfig,
        seed: int,
        *,
        latency: tuple[float, float] = (0.005, 0.030),
        loss: float = 0.0,
        start: float = START,
        prefix: str = "n",
        share_signature_checks: bool = True,
    ) -> None:
        self.graph = graph
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.loss = loss
        self._loss_rngs: dict[int, random.Random] = {}  # per sending node (see the docstring)
        self.now = start
        self.start = start
        self.latency = [self.rng.uniform(*latency) for _ in graph.edges]
        self.routers = [
            Router(
                Identity.from_seed(seed_for(f"{prefix}{i}"), f"{prefix}{i}"),
                start,
                config,
                random.Random(f"{seed}/{i}"),
            )
            for i in range(graph.n)
        ]
        self.index = {r.identity.public_key: i for i, r in enumerate(self.routers)}
        self.online = [True] * graph.n
        self.up = [False] * len(graph.edges)
        self.epoch = [0] * len(graph.edges)  # bumped when a link goes down: drops in-flight data
        self.incident: list[list[int]] = [[] for _ in range(graph.n)]
        for e, (u, v) in enumerate(graph.edges):
            self.incident[u].append(e)
            self.incident[v].append(e)
        # the node at the far end of each link id, and transmissions per envelope type
        self._far = [w for u, v in graph.edges for w in (v, u)]
        self._sent = [0] * 256
        self.lost = 0  # dropped by link loss
        self.cut = 0  # in flight when their link went down
        self.events = 0  # arrivals and ticks handled (scheduled calls, which parts replay, aside)
        self.on_send: Callable[[int, int, bytes], None] | None = None
        self.on_arrive: Callable[[int, bytes], None] | None = None
        self.on_deliver: Callable[[int, Deliver], None] | None = None
        self.on_link_up: Callable[[int, int], None] | None = None
        self._heap: list[tuple[float, int, int, int, object]] = []
        self._seq = itertools.count()  # ties on the heap break by order of scheduling
        self._tick_at = [float("inf")] * graph.n
        # frame without its hop count -> signature verdict (see the module docstring)
        self._verdicts: dict[bytes, bool | None] = {}
        if share_signature_checks:
            for router in self.routers:
                router.check_signature = self._check_signature
        # partitions (see the module docstring): every node is this copy's until partition()
        self.part = 0
        self.part_of: list[int] = [0] * graph.n
        self._remote = bytearray(2 * len(graph.edges))  # link id -> far end in another part
        self.outgoing: dict[int, list[Crossing]] = {}

    # -- partitions --------------------------------------------------------------

    def partition(self, owner: Sequence[int], part: int) -> None:
        """Play only the nodes `v` with ``owner[v] == part`` from now on (before the run)."""
        if len(owner) != self.graph.n:
            raise ValueError("one owner per node")
        self.part_of, self.part = list(owner), part
        for link, far in enumerate(self._far):
            self._remote[link] = self.part_of[far] != part  # sent on `link`, it leaves this part
        self.outgoing = {p: [] for p in sorted(set(self.part_of)) if p != part}

    def mine(self, node: int) -> bool:
        """Whether this copy plays `node`."""
        return self.part_of[node] == self.part

    def lookahead(self) -> float:
        """The least latency of a link between two parts (infinite with one part)."""
        cut = [
            self.latency[e]
            for e, (u, v) in enumerate(self.graph.edges)
            if self.part_of[u] != self.part_of[v]
        ]
        return min(cut, default=float("inf"))

    # -- topology ------------------------------------------------------------

    def owner(self, link: int) -> int:
        u, v = self.graph.edges[link >> 1]
        return v if link & 1 else u

    def link_up(self, e: int, *, quiet: bool = False) -> None:
        """Bring edge `e` up on both sides; `quiet` drops what the routers say (warm starts)."""
        if self.up[e]:
            return
        self.up[e] = True
        for node, link in self._ends(e):
            far = self.routers[self._far[link]].identity.public_key
            actions = self.routers[node].link_up(link, far, self.now)
            if not quiet:
                self.execute(node, actions)
        if not quiet and self.on_link_up is not None:
            for node, link in self._ends(e):
                self.on_link_up(node, link)

    def _ends(self, e: int) -> list[tuple[int, int]]:
        """The ends of edge `e` this copy plays, as (node, link id)."""
        u, v = self.graph.edges[e]
        mine, part = self.part_of, self.part
        return [(n, 2 * e + i) for i, n in enumerate((u, v)) if mine[n] == part]

    def link_down(self, e: int) -> None:
        if not self.up[e]:
            return
        self.up[e] = False
        self.epoch[e] += 1
        for node, link in self._ends(e):
            self.execute(node, self.routers[node].link_down(link, self.now))

    def connect_all(self, *, quiet: bool = False) -> None:
        for e in range(len(self.graph.edges)):
            self.link_up(e, quiet=quiet)

    def leave(self, node: int) -> None:
        """Take `node` offline: all its links go down."""
        self.online[node] = False
        for e in self.incident[node]:
            self.link_down(e)

    def rejoin(self, node: int) -> None:
        """Bring `node` back: links to its online neighbours come up."""
        self.online[node] = True
        for e in self.incident[node]:
            u, v = self.graph.edges[e]
            if self.online[u] and self.online[v]:
                self.link_up(e)

    def seed_routes(self) -> None:
        """Warm start: fill every path table with BFS shortest paths, as if announces converged.

        Each node's latest announce (made by a first tick whose sends were
        dropped) is stored with every path to it, at the hop count it would have
        arrived with, and its id is marked seen everywhere: what a converged
        announce round leaves behind, so re-shares and link-up tables work as
        after a real round; a second neighbour as close to the destination as
        the first becomes the path's fallback, as the round's equal-cost
        duplicates would make it. Routes expire after `route_ttl` like learned
        ones; only up links are used.
        """
        # per node, its up links as (link id, neighbour, bit): the n² loop below builds
        # each Route at once rather than through Router._learn's checks (a sixth of a
        # 1,000-node run went there)
        ends: list[list[tuple[int, int, int]]] = [[] for _ in range(self.graph.n)]
        for e in range(len(self.graph.edges)):
            if self.up[e]:
                for a, link in self._ends(e):
                    b = self._far[link]
                    ends[a].append((link, b, self.routers[a].links[link].bit))
        keys = [r.identity.public_key for r in self.routers]
        expires = self.now + self.config.route_ttl
        played = [u for u in range(self.graph.n) if self.mine(u)]
        mine = set(played)
        # with an announce radius, an announce reached only the nodes within it (but a room
        # member's: Router.announce_widely)
        radius = self.config.announce_radius
        beyond = radius + 1
        for dest in range(self.graph.n):
            if radius and not self.routers[dest].notices.wide:
                dist: Sequence[int] | _Within = _Within(self.graph.within(dest, radius), beyond)
                around = [u for u in dist if u in mine]
            else:
                dist = self.graph.distances(dest)
                around = played
            key = keys[dest]
            announce = self.routers[dest].last_announce
            message_id = announce.message_id if announce is not None else None
            stored: dict[int, bytes] = {}  # hop count -> encoded copy, shared by every holder
            for u in around:
                d = dist[u]
                if d < 1:
                    continue
                router = self.routers[u]
                copy = None
                if announce is not None:
                    router.seen.add(message_id, self.now)  # type: ignore[arg-type]
                    copy = stored.get(d)
                    if copy is None:
                        copy = stored[d] = announce.with_hops(d).encode()
                # the first neighbour one step nearer is the path, the second its equal-cost
                # fallback; every neighbour no farther than u passes the round's announce
                # on to u (those whose path runs through u do not): Router._heard's mask
                hop: int | None = None
                alt: int | None = None
                peer = 0
                near = 0
                for k, w, bit in ends[u]:
                    dw = dist[w]
                    if dw <= d:
                        near |= bit
                        if dw == d - 1:
                            if hop is None:
                                hop, peer = k, w
                            elif alt is None:
                                alt = k
                if d == 1:
                    route = router.routes.get(key)  # the neighbour's own, from link-up
                    if route is not None:
                        route.announce = copy
                        route.near = near
                    continue
                if hop is None:
                    continue
                router.routes[key] = Route(key, hop, keys[peer], d, expires, copy, alt, near)

    # -- scheduling ------------------------------------------------------------

    def at(self, when: float, call: Callable[[], None]) -> None:
        """Run `call` at virtual time `when`."""
        self._push(when, _CALL, 0, call)

    def start_ticks(self, spread: float = 0.0) -> None:
        """Schedule every router's first tick, spread uniformly over `spread` seconds."""
        for i, router in enumerate(self.routers):
            when = max(router.next_deadline(), self.now + self.rng.uniform(0.0, spread))
            if self.mine(i):  # (every part draws the same numbers)
                self._schedule_tick(i, when)

    def run_until(self, end: float) -> None:
        """Process events up to virtual time `end` (this copy alone: one part, or a test)."""
        self._run(math.nextafter(end, math.inf))
        self.now = max(self.now, end)

    def run_part(self, end: float, peers: dict[int, Connection]) -> None:
        """Process events up to `end` in step with the other parts, `peers` (part -> pipe).

        Each round the parts swap the frames crossing to each other and the
        earliest time each holds; all then take the same window from the
        earliest of those, as long as the lookahead.
        """
        step = self.lookahead()
        stop = math.nextafter(end, math.inf)
        while True:
            mins = [self._next_times()]
            arrived: list[list[Crossing]] = []
            for part in sorted(peers):
                out, self.outgoing[part] = self.outgoing[part], []
                # marshal: plain tuples of numbers and bytes, faster than pickle both ways
                message = marshal.dumps((out, *mins[0]))
                conn = peers[part]
                # the lower part speaks first: no two parts wait on each other's full pipe
                if self.part < part:
                    conn.send_bytes(message)
                    got = marshal.loads(conn.recv_bytes())
                else:
                    got = marshal.loads(conn.recv_bytes())
                    conn.send_bytes(message)
                arrived.append(got[0])
                mins.append(got[1:])
            for batch in arrived:
                for when, node, link, sent_in, data in batch:
                    self._push(when, _ARRIVE, node, (link, sent_in, data))
            start = min(min(m) for m in mins)
            if start > end:
                break
            self._run(min(start + step, stop))
        self.now = max(self.now, end)

    def _next_times(self) -> tuple[float, float]:
        """The earliest event held here, and the earliest arrival sent to another part."""
        first = self._heap[0][0] if self._heap else math.inf
        sent = min((c[0] for out in self.outgoing.values() for c in out), default=math.inf)
        return first, sent

    def _run(self, limit: float) -> None:
        """Process the events due before `limit`."""
        # the loop runs once per frame of a whole mesh: names it uses are local
        heap, pop, routers, execute = self._heap, heapq.heappop, self.routers, self.execute
        up, epoch, tick_at = self.up, self.epoch, self._tick_at
        events = cut = 0
        try:
            while heap and heap[0][0] < limit:
                when, _, kind, node, payload = pop(heap)
                self.now = when
                events += 1
                if kind == _ARRIVE:
                    arrival: tuple[int, int, bytes | None] = payload  # type: ignore[assignment]
                    link, sent_in, data = arrival
                    e = link >> 1
                    if epoch[e] != sent_in or not up[e]:
                        cut += 1
                        continue
                    if data is None:  # the far end, in another part, closed the link
                        self.link_down(e)
                        continue
                    if self.on_arrive is not None:
                        self.on_arrive(node, data)
                    execute(node, routers[node].receive(link, data, when))
                elif kind == _TICK:
                    if tick_at[node] != when:
                        continue  # superseded
                    tick_at[node] = float("inf")
                    execute(node, routers[node].tick(when))
                else:
                    events -= 1
                    payload()  # type: ignore[operator]
        finally:
            self.events += events
            self.cut += cut

    @property
    def transmissions(self) -> int:
        """Frames put on links (those lost to `loss` included)."""
        return sum(self._sent)

    @property
    def sent_by_type(self) -> dict[int, int]:
        """Transmissions per envelope type byte."""
        return {kind: n for kind, n in enumerate(self._sent) if n}

    def _check_signature(self, data: bytes) -> bool | None:
        """A router's signature check, made once per distinct frame (hop count aside)."""
        verdicts = self._verdicts
        # a flood sends one bytes object on many links, and bytes keep their hash: look
        # the frame up as it is first, then without its hop count
        ok = verdicts.get(data)
        if ok is None:
            key = data[1:]
            ok = verdicts.get(key)
            if ok is None:
                if len(verdicts) >= MAX_VERDICTS:
                    verdicts.clear()
                ok = verdicts[key] = wire_signature_holds(data)
            verdicts[data] = ok
        return ok

    # -- actions ---------------------------------------------------------------

    def execute(self, node: int, actions: Sequence[Action]) -> None:
        """Carry out a router's actions, then make sure its next tick is scheduled."""
        if actions:
            up, now, sent, remote = self.up, self.now, self._sent, self._remote
            for action in actions:
                if type(action) is Send:
                    link = action.link
                    e = link >> 1
                    if not up[e]:
                        continue
                    data = action.data
                    sent[data[2]] += 1
                    if self.on_send is not None:
                        self.on_send(node, link, data)
                    if self.loss and self._loss_rng(node).random() < self.loss:
                        self.lost += 1
                        continue
                    if remote[link]:
                        far = self._far[link]
                        self.outgoing[self.part_of[far]].append(
                            (now + self.latency[e], far, link ^ 1, self.epoch[e], data)
                        )
                        continue
                    # it arrives on the far end's id of the link (the other parity)
                    heapq.heappush(
                        self._heap,
                        (
                            now + self.latency[e],
                            next(self._seq),
                            _ARRIVE,
                            self._far[link],
                            (link ^ 1, self.epoch[e], data),
                        ),
                    )
                elif isinstance(action, Deliver):
                    if self.on_deliver is not None:
                        self.on_deliver(node, action)
                elif isinstance(action, Close):
                    link, e = action.link, action.link >> 1
                    if remote[link] and up[e]:  # the far end's part hears of it a latency later
                        far = self._far[link]
                        self.outgoing[self.part_of[far]].append(
                            (now + self.latency[e], far, link ^ 1, self.epoch[e], None)
                        )
                    self.link_down(e)
                elif isinstance(action, Keep):
                    pass  # the mailbox is not simulated: parked envelopes and retries stand in
        deadline = self.routers[node].next_deadline()
        if deadline < self._tick_at[node]:
            self._schedule_tick(node, deadline)

    def _loss_rng(self, node: int) -> random.Random:
        rng = self._loss_rngs.get(node)
        if rng is None:
            rng = self._loss_rngs[node] = random.Random(f"{self.seed}/loss/{node}")
        return rng

    def originate(self, node: int, envelope: object) -> None:
        self.execute(node, self.routers[node].originate(envelope, self.now))  # type: ignore[arg-type]

    def _schedule_tick(self, node: int, when: float) -> None:
        if when == float("inf"):
            return
        when = max(when, self.now)
        self._tick_at[node] = when
        self._push(when, _TICK, node, None)

    def _push(self, when: float, kind: int, node: int, payload: object) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), kind, node, payload))


class _Within(dict[int, int]):
    """Hop counts from one node within a radius; any node farther reads as `beyond`."""

    def __init__(self, dist: dict[int, int], beyond: int) -> None:
        super().__init__(dist)
        self.beyond = beyond

    def __missing__(self, node: int) -> int:
        return self.beyond
