"""An in-memory network of :class:`~mesh.routing.router.Router` instances on a fake clock.

Nothing here touches a socket, a thread or the wall clock: links are pairs of
integer ids, in-flight messages sit in one FIFO, and time moves only when a test
calls :meth:`Network.advance`. Keys and randomness come from each node's name,
so every run of a scenario sends the same bytes in the same order.

Typical use::

    net = Network(RouterConfig(...))
    a, b = net.add("a"), net.add("b")
    net.connect("a", "b")
    net.run_until_idle()
    net.originate("a", net.node("a").router.make(EnvelopeType.DATA, net.now, ...))
    net.run_until_idle()
    assert net.node("b").delivered
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import deque
from dataclasses import dataclass, field

from mesh.routing.router import Action, Close, Deliver, Keep, Router, RouterConfig, Send
from mesh.wire.envelope import Envelope
from mesh.wire.identity import Identity

START = 1_700_000_000.0


def seed_for(name: str) -> bytes:
    """The fixed 32-byte Ed25519 seed of the node called `name`."""
    return hashlib.blake2b(name.encode(), digest_size=32, person=b"meshnotes-sim").digest()


@dataclass
class SimNode:
    """One node: its router, what it delivered, and its links by neighbour name."""

    name: str
    router: Router
    delivered: list[Deliver] = field(default_factory=list)
    kept: list[Keep] = field(default_factory=list)  # what the mailbox was shown
    links: dict[str, int] = field(default_factory=dict)  # neighbour name -> local link id

    @property
    def key(self) -> bytes:
        return self.router.identity.public_key

    @property
    def envelopes(self) -> list[Envelope]:
        """The delivered envelopes, in delivery order."""
        return [d.envelope for d in self.delivered]


@dataclass(frozen=True)
class _End:
    owner: str  # node holding this end of the link
    peer: str  # node at the other end
    remote: int  # link id of the other end


class Network:
    """Nodes, links and a FIFO of in-flight envelopes, all stepped by hand."""

    def __init__(self, config: RouterConfig | None = None, start: float = START) -> None:
        self.config = config if config is not None else RouterConfig()
        self.now = start
        self.nodes: dict[str, SimNode] = {}
        self.transmissions = 0  # Send actions put on a link
        self.lost = 0  # messages whose link closed while they were in flight
        self.closed: list[tuple[str, str, str]] = []  # (closer, neighbour, reason)
        self._ends: dict[int, _End] = {}
        self._queue: deque[tuple[int, bytes]] = deque()  # (sender's link id, bytes)
        self._link_ids = itertools.count(1)

    # -- topology ------------------------------------------------------------

    def add(self, name: str, config: RouterConfig | None = None) -> SimNode:
        """Create a node with a key and an rng fixed by `name`."""
        identity = Identity.from_seed(seed_for(name), name)
        router = Router(identity, self.now, config or self.config, random.Random(name))
        node = self.nodes[name] = SimNode(name, router)
        return node

    def line(self, *names: str) -> list[SimNode]:
        """Add `names` and connect them in a chain, in order; then settle."""
        nodes = [self.add(n) for n in names]
        for left, right in itertools.pairwise(names):
            self.connect(left, right)
        self.run_until_idle()
        return nodes

    def node(self, name: str) -> SimNode:
        return self.nodes[name]

    def connect(self, a: str, b: str) -> None:
        """Bring up a link between `a` and `b` (link_up on both sides) and queue what they say."""
        id_a, id_b = next(self._link_ids), next(self._link_ids)
        self._ends[id_a] = _End(a, b, id_b)
        self._ends[id_b] = _End(b, a, id_a)
        self.nodes[a].links[b] = id_a
        self.nodes[b].links[a] = id_b
        actions_a = self.nodes[a].router.link_up(id_a, self.nodes[b].key, self.now)
        actions_b = self.nodes[b].router.link_up(id_b, self.nodes[a].key, self.now)
        self.execute(a, actions_a)
        self.execute(b, actions_b)

    def disconnect(self, a: str, b: str) -> None:
        """Close the link between `a` and `b`: link_down on both sides, and queue what they say."""
        link = self.nodes[a].links.pop(b, None)
        if link is None:
            return
        remote = self._ends.pop(link).remote
        self._ends.pop(remote, None)
        self.nodes[b].links.pop(a, None)
        self.execute(a, self.nodes[a].router.link_down(link, self.now))
        self.execute(b, self.nodes[b].router.link_down(remote, self.now))

    def link(self, a: str, b: str) -> int:
        """The id of `a`'s end of its link to `b`."""
        return self.nodes[a].links[b]

    # -- traffic -------------------------------------------------------------

    def execute(self, name: str, actions: list[Action]) -> None:
        """Carry out the actions node `name` returned."""
        node = self.nodes[name]
        for action in actions:
            if isinstance(action, Send):
                if action.link in self._ends:
                    self.transmissions += 1
                    self._queue.append((action.link, action.data))
            elif isinstance(action, Deliver):
                node.delivered.append(action)
            elif isinstance(action, Keep):
                node.kept.append(action)
            elif isinstance(action, Close):
                end = self._ends.get(action.link)
                if end is not None:
                    self.closed.append((name, end.peer, action.reason))
                    self.disconnect(name, end.peer)

    def originate(self, name: str, envelope: Envelope) -> None:
        """Have node `name` send an envelope it authored."""
        self.execute(name, self.nodes[name].router.originate(envelope, self.now))

    def inject(self, sender: str, receiver: str, data: bytes) -> None:
        """Put raw bytes on the wire from `sender` to `receiver`, as a faulty or hostile peer."""
        self.transmissions += 1
        self._queue.append((self.link(sender, receiver), data))

    def pending(self) -> int:
        return len(self._queue)

    def step(self) -> bool:
        """Deliver the oldest in-flight message; return False when nothing was in flight."""
        if not self._queue:
            return False
        link, data = self._queue.popleft()
        end = self._ends.get(link)
        if end is None:
            self.lost += 1
            return True
        receiver = self._ends[end.remote].owner
        self.execute(receiver, self.nodes[receiver].router.receive(end.remote, data, self.now))
        return True

    def run_until_idle(self, max_steps: int = 100_000) -> int:
        """Deliver messages until none is in flight; return how many were delivered."""
        for steps in range(max_steps):
            if not self.step():
                return steps
        raise RuntimeError(f"network still busy after {max_steps} steps")

    # -- time ----------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock and tick every router (in insertion order); nothing is delivered yet."""
        self.now += seconds
        for name, node in self.nodes.items():
            self.execute(name, node.router.tick(self.now))
