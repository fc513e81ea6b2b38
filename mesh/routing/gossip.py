"""Room gossip: a bounded-degree topic mesh per room, as a sans-I/O state machine.

Plain flooding sends every room envelope over every link, so a node receives
about one copy per neighbour. The topic mesh (after libp2p gossipsub) keeps,
per room ("topic"), about `d` of the node's neighbours as *mesh peers*, within
`d_lo`..`d_hi`, and forwards room envelopes to those only. Every node that
relays a room's traffic takes part, members or not: members are scattered
across the mesh and relays must carry their traffic.

- **GRAFT** / **PRUNE** add or remove the sender as a mesh peer for the topics
  listed; a pruned peer is not grafted again for `prune_backoff` seconds.
- **Heartbeat** (every `heartbeat` seconds while some topic is active) grafts
  up to `d` when a mesh has fallen below `d_lo`, prunes down to `d` (keeping
  the best-scored) above `d_hi`, and sends **IHAVE** with the ids of the last
  `gossip_windows` heartbeats' messages to up to `d_lazy` non-mesh
  neighbours. A neighbour missing one of them answers **IWANT**, and gets the
  envelope from the message cache: the repair path for gaps in the mesh.
- A node that publishes or passes on a message while its mesh is below
  `d_lo` (all its links went down and came back, say) grafts up to `d` at
  once rather than at the next heartbeat: the message must not go nowhere.
- With `flood_tail` > 0, a copy that may cross fewer than `flood_tail` more
  links after the next goes to every neighbour: paths through the topic mesh
  are longer than shortest paths, and a copy out of hops can neither go on nor
  be offered in IHAVE, which would strand members far from the author.
- **Tree mode** (``tree``): no mesh is grafted; the router names the links
  each room envelope goes on: those to neighbours not nearer its author than
  this node, by the announces they passed on (every neighbour passes an
  announce on to us except those whose path to its author runs through us).
  That is the author's reverse shortest-path tree: a node gets a copy from each
  neighbour one hop nearer the author (1.9 on average at mean degree 6), along
  shortest paths; IHAVE to every neighbour and IWANT repair what churn loses.
  With ``tree_from``, a node knowing fewer destinations floods instead (with
  IHAVE to links that came up since): the ``auto`` mode of `room_routing`.
- **Score** per neighbour: first deliveries earn a capped credit, invalid
  traffic (reported by the router) costs `invalid_penalty`; scores decay each
  heartbeat. Peers below `graylist` are pruned, never grafted, and their
  IHAVE/IWANT are ignored.

Control payloads (every envelope type is neighbour-only, hop limit 1)::

    GRAFT, PRUNE   32-byte topic ids, concatenated
    IHAVE          repeated: topic (32) | u16 count | count x 32-byte message ids
    IWANT          32-byte message ids, concatenated

The router owns signing: :class:`Control` asks it to sign and send one
control envelope; :class:`Forward` sends bytes already signed by their author.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mesh.errors import EnvelopeError
from mesh.wire.envelope import EnvelopeType

ID = 32
_COUNT = struct.Struct(">H")

#: the neighbour-only envelope types this module speaks
CONTROL_TYPES = frozenset(
    {EnvelopeType.GRAFT, EnvelopeType.PRUNE, EnvelopeType.IHAVE, EnvelopeType.IWANT}
)


@dataclass(frozen=True)
class GossipConfig:
    """Degrees, timings and bounds of the topic mesh; the defaults follow gossipsub's."""

    d: int = 6
    d_lo: int = 4
    d_hi: int = 12
    d_lazy: int = 6
    heartbeat: float = 1.0
    gossip_windows: int = 3  # heartbeats whose message ids go out in IHAVE
    cache_windows: int = 5  # heartbeats a message stays in the cache, for IWANT
    max_ihave_ids: int = 256  # per IHAVE message
    max_iwant_ids: int = 256  # per IWANT message, and answered per IWANT
    iwant_timeout: float = 3.0  # before the same id is asked again
    prune_backoff: float = 10.0
    # a copy that may cross at most this many more links after the next one goes to every
    # neighbour, not just the mesh: mesh paths are longer than shortest ones, and a copy
    # out of hops can neither be forwarded nor offered in IHAVE (0: never)
    flood_tail: int = 0
    # the router names the links each envelope goes on: those to neighbours that are not
    # nearer its author than this node (the author's reverse shortest-path tree); no mesh
    # is grafted, and IHAVE/IWANT repair what the tree loses
    tree: bool = False
    # with tree: while the router knows fewer destinations than this, the tree is every link
    # (a small mesh floods its rooms: cheap there, and blind to no announce it lacks)
    tree_from: int = 0
    topic_ttl: float = 600.0  # a topic without traffic is forgotten
    max_topics: int = 1024
    first_delivery_weight: float = 1.0
    first_delivery_cap: float = 10.0
    invalid_penalty: float = 10.0
    score_decay: float = 0.9  # per heartbeat
    graylist: float = -20.0


@dataclass(frozen=True)
class Forward:
    """Send `data`, an envelope signed by its author, on `link`."""

    link: int
    data: bytes


@dataclass(frozen=True)
class Control:
    """Sign and send a control envelope of `type` carrying `payload` on `link` (hop limit 1)."""

    link: int
    type: EnvelopeType
    payload: bytes


GossipAction = Forward | Control


@dataclass
class _Topic:
    mesh: set[int] = field(default_factory=set)
    last_active: float = 0.0
    backoff: dict[int, float] = field(default_factory=dict)  # link -> no graft before


class Gossip:
    """Topic-mesh state of one node. Feed it events with `now`; carry out what it returns."""

    def __init__(self, config: GossipConfig, rng: random.Random) -> None:
        if not 1 <= config.d_lo <= config.d <= config.d_hi:
            raise ValueError("gossip degrees must satisfy 1 <= d_lo <= d <= d_hi")
        self.config = config
        self.rng = rng
        self.peers: dict[int, bytes] = {}  # link -> neighbour key
        self.scores: dict[bytes, float] = {}
        self.credit: dict[bytes, float] = {}  # first-delivery credit, capped
        self.topics: dict[bytes, _Topic] = {}
        self.cache: dict[bytes, tuple[bytes, bytes]] = {}  # msg id -> (topic, data)
        # cached msg id -> links that have it or were told of it in an IHAVE (links are
        # reliable streams: once is enough, and a neighbour that lacks it answers IWANT)
        self.holders: dict[bytes, set[int]] = {}
        self.windows: deque[list[bytes]] = deque([[]])  # newest first: msg ids per heartbeat
        self.asked: dict[bytes, float] = {}  # msg id -> when IWANT may ask again
        self.counters: dict[str, int] = {}
        self._next_heartbeat = float("inf")

    # -- neighbours ----------------------------------------------------------

    def add_peer(self, link: int, peer: bytes) -> None:
        self.peers[link] = peer

    def remove_peer(self, link: int) -> None:
        self.peers.pop(link, None)
        for topic in self.topics.values():
            topic.mesh.discard(link)
            topic.backoff.pop(link, None)
        for holders in self.holders.values():
            holders.discard(link)  # a link by that id later is another neighbour

    def penalise(self, link: int) -> None:
        """The router dropped invalid traffic from `link`."""
        peer = self.peers.get(link)
        if peer is not None:
            self.scores[peer] = self.score(peer) - self.config.invalid_penalty
            self.count("penalised")

    def score(self, peer: bytes) -> float:
        return self.scores.get(peer, 0.0)

    # -- messages ------------------------------------------------------------

    def publish(
        self, topic: bytes, msg_id: bytes, data: bytes, now: float, tree: list[int] | None = None
    ) -> list[GossipAction]:
        """Send a room envelope authored here to the topic's mesh peers (and `tree` links)."""
        actions = self._join(topic, None, now)
        actions += self._fill(topic, now)
        self._remember(topic, msg_id, data)
        targets = self.topics[topic].mesh.union(tree or ())
        self.holders[msg_id].update(targets)
        return actions + [Forward(link, data) for link in sorted(targets)]

    def receive(
        self,
        topic: bytes,
        msg_id: bytes,
        data: bytes | None,
        link: int,
        now: float,
        spare: int | None = None,
        tree: list[int] | None = None,
    ) -> list[GossipAction]:
        """A new (verified, unseen) room envelope arrived on `link`.

        `data` is the copy to pass on (hop count already raised), None when
        its hop limit forbids passing it on; `spare` is how many links it may
        cross after the next one (None: plenty); `tree`, the links its author's
        tree goes on from here (with ``tree`` set: see :class:`GossipConfig`).
        """
        self.asked.pop(msg_id, None)
        peer = self.peers.get(link)
        if peer is not None:
            credit = self.credit.get(peer, 0.0)
            gain = min(self.config.first_delivery_weight, self.config.first_delivery_cap - credit)
            if gain > 0:
                self.credit[peer] = credit + gain
                self.scores[peer] = self.score(peer) + gain
        actions = self._join(topic, link, now)
        if data is None:
            return actions
        actions += self._fill(topic, now)
        self._remember(topic, msg_id, data)
        targets = self.topics[topic].mesh.union(tree or ())
        if spare is not None and spare < self.config.flood_tail:
            targets = set(self.peers)
            self.count("tail_flooded")
        targets.discard(link)
        self.holders[msg_id].update(targets, (link,))
        return actions + [Forward(other, data) for other in sorted(targets)]

    def heard(self, msg_id: bytes, link: int) -> None:
        """The neighbour on `link` sent us a message we had: it needs no IHAVE of it."""
        holders = self.holders.get(msg_id)
        if holders is not None:
            holders.add(link)

    def control(
        self, link: int, type: int, payload: bytes, known: Callable[[bytes], bool], now: float
    ) -> list[GossipAction]:
        """Handle a verified control envelope from neighbour `link`.

        `known(msg_id)` says whether this node has seen a message (the
        router's seen cache); IHAVE asks only for the others. Raises
        EnvelopeError on a malformed payload.
        """
        peer = self.peers.get(link)
        if peer is None:
            return []
        if type != EnvelopeType.IHAVE and (not payload or len(payload) % ID):
            raise EnvelopeError(f"gossip control payload of {len(payload)} bytes")
        self.count(f"received_{EnvelopeType(type).name.lower()}")
        graylisted = self.score(peer) < self.config.graylist
        if type == EnvelopeType.GRAFT:
            return self._on_graft(link, _split(payload), graylisted, now)
        if type == EnvelopeType.PRUNE:
            for topic_id in _split(payload):
                topic = self.topics.get(topic_id)
                if topic is not None:
                    topic.mesh.discard(link)
                    topic.backoff[link] = now + self.config.prune_backoff
            return []
        if type == EnvelopeType.IHAVE:
            offers = _parse_ihave(payload)
            if graylisted:
                return []
            want = []
            for _topic, ids in offers:
                for msg_id in ids:
                    if known(msg_id):
                        continue
                    if self.asked.get(msg_id, 0.0) > now:
                        continue
                    self.asked[msg_id] = now + self.config.iwant_timeout
                    want.append(msg_id)
            want = want[: self.config.max_iwant_ids]
            if not want:
                return []
            self.count("sent_iwant")
            return [Control(link, EnvelopeType.IWANT, b"".join(want))]
        if type == EnvelopeType.IWANT:
            if graylisted:
                return []
            actions: list[GossipAction] = []
            for msg_id in _split(payload)[: self.config.max_iwant_ids]:
                cached = self.cache.get(msg_id)
                if cached is not None:
                    actions.append(Forward(link, cached[1]))
                    self.holders[msg_id].add(link)
            self.count("served_iwant", len(actions))
            return actions
        raise EnvelopeError(f"not a gossip control type: {type}")

    # -- time ----------------------------------------------------------------

    def next_deadline(self) -> float:
        """When :meth:`heartbeat` is next due; infinity while no topic is active."""
        return self._next_heartbeat if self.topics else float("inf")

    def heartbeat(self, now: float) -> list[GossipAction]:
        """Repair meshes, gossip recent ids, shift the message cache, decay scores."""
        cfg = self.config
        self._next_heartbeat = now + cfg.heartbeat
        grafts: dict[int, list[bytes]] = {}
        prunes: dict[int, list[bytes]] = {}
        ihave: dict[int, list[bytes]] = {}  # link -> encoded (topic, ids) blocks
        recent = self._recent_by_topic()
        for topic_id in sorted(self.topics):
            topic = self.topics[topic_id]
            if topic.last_active + cfg.topic_ttl <= now:
                del self.topics[topic_id]
                continue
            for link in [k for k, until in topic.backoff.items() if until <= now]:
                del topic.backoff[link]
            for link in sorted(topic.mesh):
                if self.score(self.peers[link]) < cfg.graylist:
                    topic.mesh.discard(link)
                    prunes.setdefault(link, []).append(topic_id)
            if len(topic.mesh) < cfg.d_lo and not cfg.tree:
                for link in self._candidates(topic)[: cfg.d - len(topic.mesh)]:
                    topic.mesh.add(link)
                    grafts.setdefault(link, []).append(topic_id)
            elif len(topic.mesh) > cfg.d_hi:
                ranked = self._ranked(sorted(topic.mesh))
                for link in ranked[cfg.d :]:
                    topic.mesh.discard(link)
                    topic.backoff[link] = now + cfg.prune_backoff
                    prunes.setdefault(link, []).append(topic_id)
            ids = recent.get(topic_id)
            if ids:
                lazy = [
                    k
                    for k in sorted(self.peers)
                    if k not in topic.mesh and self.score(self.peers[k]) >= 0.0
                ]
                self.rng.shuffle(lazy)
                for link in lazy[: cfg.d_lazy]:
                    # not the ids it sent us, we sent it, or we told it of
                    news = [m for m in ids if link not in self.holders[m]]
                    for m in news:
                        self.holders[m].add(link)
                    if news:
                        block = topic_id + _COUNT.pack(len(news)) + b"".join(news)
                        ihave.setdefault(link, []).append(block)
        actions: list[GossipAction] = []
        for link, topics in sorted(prunes.items()):
            actions.append(Control(link, EnvelopeType.PRUNE, b"".join(topics)))
        for link, topics in sorted(grafts.items()):
            actions.append(Control(link, EnvelopeType.GRAFT, b"".join(topics)))
        for link, blocks in sorted(ihave.items()):
            actions.append(Control(link, EnvelopeType.IHAVE, b"".join(blocks)))
        self.count("sent_ihave", len(ihave))
        self._shift(now)
        for peer in list(self.scores):
            self.scores[peer] *= cfg.score_decay
            if abs(self.scores[peer]) < 0.01:
                del self.scores[peer]
        for peer in list(self.credit):
            self.credit[peer] *= cfg.score_decay
            if self.credit[peer] < 0.01:
                del self.credit[peer]
        return actions

    def status(self) -> dict[str, object]:
        """Sizes against bounds, for the node's status output."""
        return {
            "topics": {"size": len(self.topics), "bound": self.config.max_topics},
            "cached_messages": len(self.cache),
            "mesh_peers": {t.hex()[:16]: len(s.mesh) for t, s in sorted(self.topics.items())},
            "counters": dict(sorted(self.counters.items())),
        }

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    # -- internals -----------------------------------------------------------

    def _join(
        self, topic_id: bytes, via: int | None, now: float, *, graft_via: bool = True
    ) -> list[GossipAction]:
        """Make sure the topic exists; a new one grafts `via` (if any) and random peers up to d."""
        topic = self.topics.get(topic_id)
        if topic is not None:
            topic.last_active = now
            return []
        if len(self.topics) >= self.config.max_topics:
            stalest = min(self.topics, key=lambda t: self.topics[t].last_active)
            del self.topics[stalest]
            self.count("topics_evicted")
        if self._next_heartbeat == float("inf") or not self.topics:
            self._next_heartbeat = now + self.config.heartbeat
        topic = self.topics[topic_id] = _Topic(last_active=now)
        if self.config.tree:
            return []  # no mesh to graft: the tree says where each envelope goes
        chosen = []
        if via is not None and self.score(self.peers.get(via, b"")) >= self.config.graylist:
            chosen.append(via)
        chosen += [k for k in self._candidates(topic) if k != via][: self.config.d - len(chosen)]
        topic.mesh.update(chosen)
        return [
            Control(link, EnvelopeType.GRAFT, topic_id)
            for link in chosen
            if graft_via or link != via
        ]

    def _fill(self, topic_id: bytes, now: float) -> list[GossipAction]:
        """Graft up to `d` now if the mesh fell below `d_lo` (say, every link went down and
        came back): a message must not wait for the heartbeat with no mesh peer to go to."""
        topic = self.topics[topic_id]
        if len(topic.mesh) >= self.config.d_lo or self.config.tree:
            return []
        chosen = self._candidates(topic)[: self.config.d - len(topic.mesh)]
        topic.mesh.update(chosen)
        if chosen:
            self.count("grafted_on_send")
        return [Control(link, EnvelopeType.GRAFT, topic_id) for link in chosen]

    def _on_graft(
        self, link: int, topic_ids: list[bytes], graylisted: bool, now: float
    ) -> list[GossipAction]:
        refused = []
        actions: list[GossipAction] = []
        for topic_id in topic_ids:
            topic = self.topics.get(topic_id)
            if topic is None and not graylisted:
                # a relay learns of the topic from a graft: join with the grafter in the mesh
                actions += self._join(topic_id, link, now, graft_via=False)
                continue
            if topic is not None and link in topic.mesh:
                continue
            if (
                topic is None
                or graylisted
                or topic.backoff.get(link, 0.0) > now
                or len(topic.mesh) >= self.config.d_hi
            ):
                refused.append(topic_id)
                continue
            topic.mesh.add(link)
        if refused:
            actions.append(Control(link, EnvelopeType.PRUNE, b"".join(refused)))
        return actions

    def _candidates(self, topic: _Topic) -> list[int]:
        """Neighbours that may be grafted to `topic`, best score first, ties in random order."""
        pool = [
            k
            for k in sorted(self.peers)
            if k not in topic.mesh and k not in topic.backoff and self.score(self.peers[k]) >= 0.0
        ]
        return self._ranked(pool)

    def _ranked(self, links: list[int]) -> list[int]:
        self.rng.shuffle(links)
        links.sort(key=lambda k: -self.score(self.peers.get(k, b"")))
        return links

    def _remember(self, topic: bytes, msg_id: bytes, data: bytes) -> None:
        if msg_id not in self.cache:
            self.cache[msg_id] = (topic, data)
            self.holders[msg_id] = set()
            self.windows[0].append(msg_id)

    def _recent_by_topic(self) -> dict[bytes, list[bytes]]:
        recent: dict[bytes, list[bytes]] = {}
        for window in list(self.windows)[: self.config.gossip_windows]:
            for msg_id in window:
                cached = self.cache.get(msg_id)
                if cached is not None:
                    ids = recent.setdefault(cached[0], [])
                    if len(ids) < self.config.max_ihave_ids:
                        ids.append(msg_id)
        return recent

    def _shift(self, now: float) -> None:
        self.windows.appendleft([])
        while len(self.windows) > self.config.cache_windows:
            for msg_id in self.windows.pop():
                self.cache.pop(msg_id, None)
                self.holders.pop(msg_id, None)
        for msg_id in [m for m, until in self.asked.items() if until <= now]:
            del self.asked[msg_id]


def _split(payload: bytes) -> list[bytes]:
    return [payload[i : i + ID] for i in range(0, len(payload), ID)]


def _parse_ihave(payload: bytes) -> list[tuple[bytes, list[bytes]]]:
    """Parse IHAVE blocks strictly; raise EnvelopeError if the lengths do not add up."""
    offers = []
    offset = 0
    while offset < len(payload):
        if len(payload) < offset + ID + _COUNT.size:
            raise EnvelopeError("IHAVE block truncated")
        topic = payload[offset : offset + ID]
        (count,) = _COUNT.unpack_from(payload, offset + ID)
        offset += ID + _COUNT.size
        end = offset + count * ID
        if count == 0 or end > len(payload):
            raise EnvelopeError("IHAVE block count does not match its length")
        offers.append((topic, _split(payload[offset:end])))
        offset = end
    if not offers:
        raise EnvelopeError("empty IHAVE")
    return offers
