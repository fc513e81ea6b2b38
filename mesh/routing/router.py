"""The routing core: what a node does with every envelope, as a sans-I/O state machine.

The router never touches a socket or a clock. The node feeds it events —
:meth:`Router.link_up`, :meth:`Router.link_down`, :meth:`Router.receive`,
:meth:`Router.originate`, :meth:`Router.tick` — each with the current time
`now` (seconds), and carries out the actions it returns: :class:`Send` bytes
on a link, :class:`Deliver` an envelope to the layers above, :class:`Close`
a link. :meth:`Router.next_deadline` says when `tick` is next needed.

Rules for an envelope arriving on a link, in order (each drop is counted as
``dropped_<reason>``):

1. the link's token bucket must have a token (``rate_limited``);
2. it must decode strictly (``malformed``) and carry a timestamp inside the
   window (``stale``, ``future``);
3. its id must be unseen (``duplicate``);
4. the author's signature must hold (``bad_signature``);
5. the path to its author is learned from the link it came on (reverse path);
6. announces refresh the path table and flood on; withdrawals (a neighbour
   lost its path to some peers) drop our paths through it and pass on; an
   announce seen before still gives a path when we have none (after a
   withdrawal, re-shared announces must work); address records go up to
   the node and flood on within their small hop limit; envelopes for this
   node are delivered; others are
   forwarded along the known path, or flooded once when none was ever known,
   as long as the hop limit allows (``hop_limit``); stored types (>= DATA) for
   a peer that is not a neighbour are also kept for the mailbox (:class:`Keep`).
   A directed envelope whose path was *lost* (withdrawn or its link went
   down) is not flooded: it is parked, and sent along the next path learned
   for its destination, or dropped (``dropped_park_expired``) after
   ``park_ttl`` (:mod:`mesh.routing.parking`). A relay floods a FLOOD-flagged envelope
   without a path at once; its author parks it too, and floods it only if no
   path came by then (``park_expired_flooded``).
7. with ``RouterConfig.room_gossip``, room envelopes go to the topic mesh of
   :mod:`mesh.routing.gossip` instead of every link, and its GRAFT/PRUNE/IHAVE/IWANT
   envelopes (neighbour-only, hop limit 1) are handled here; off, they are
   dropped (``gossip_off``).

Fallbacks: an announce copy that comes through another link at the distance
of our path makes that link the path's fallback (a feasible successor: that
neighbour is nearer the destination than we are). A path whose link goes down
or withdraws it moves to its fallback silently; only paths without one are
withdrawn, which keeps most of a leaving node's transit paths out of repair.

Route repair: when a neighbour withdraws a destination we still reach another
way, we send it our stored announce for it after a random wait of one to two
``reshare_delay`` (by then any stale path of ours would have been withdrawn
too), unless that neighbour passed an announce of it to us meanwhile; the
neighbour takes it as a re-shared announce and floods it on to the others
that lost the path, which cancels their own offers. A relearned path goes at
once only on links older than ``link_settle``; a younger one (whose peer just
sent us its table) is owed it, unless its peer passes us that destination
meanwhile, and gets what it is still owed in one TABLE when it settles, so
that a node coming back does not echo each table it is sent to all its other
neighbours.

Tables: the stored announces a node sends on link-up (and when a link
settles) travel packed in TABLE envelopes, neighbour-only; each entry is then
handled as if it had come alone, from rule 2 on, and costs its own token.

Invalid traffic costs the sending link penalty points; past the threshold
the link is closed and its peer banned for a while.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mesh.errors import EnvelopeError
from mesh.routing.actions import Action, Close, Deliver, Keep, Send
from mesh.routing.gossip import CONTROL_TYPES, Control, Gossip, GossipAction, GossipConfig
from mesh.routing.parking import ParkingLot
from mesh.routing.ratelimit import PenaltyScore, TokenBucket
from mesh.routing.replay import ReplayGuard
from mesh.routing.reshare import Offers
from mesh.routing.seen import SeenCache
from mesh.wire.envelope import (
    AUTHOR_AT,
    AUTHOR_END,
    DEST_AT,
    MAX_HOPS,
    MAX_PAYLOAD,
    DestKind,
    Envelope,
    EnvelopeType,
    wire_message_id,
    wire_signature_holds,
)
from mesh.wire.identity import Identity, encode_peer_id

__all__ = [
    "Action",
    "Close",
    "Deliver",
    "Keep",
    "Route",
    "Router",
    "RouterConfig",
    "Send",
    "check_signatures",
    "pack_table",
    "unpack_table",
]

#: destinations named in one withdrawal notice at most (32 bytes each)
MAX_WITHDRAW = 2048

#: envelope types a node sends to its neighbours only, with hop limit 1, never passed on
NEIGHBOUR_ONLY = frozenset(
    {EnvelopeType.WITHDRAW, EnvelopeType.INVENTORY, EnvelopeType.TABLE} | CONTROL_TYPES
)

#: a TABLE entry: its length (big-endian), then one encoded ANNOUNCE
_ENTRY = struct.Struct(">H")


def pack_table(frames: list[bytes]) -> list[bytes]:
    """TABLE payloads carrying `frames` (encoded announces), each within MAX_PAYLOAD."""
    payloads: list[bytes] = []
    part: list[bytes] = []
    size = 0
    for frame in frames:
        need = _ENTRY.size + len(frame)
        if part and size + need > MAX_PAYLOAD:
            payloads.append(b"".join(part))
            part, size = [], 0
        part += (_ENTRY.pack(len(frame)), frame)
        size += need
    if part:
        payloads.append(b"".join(part))
    return payloads


def unpack_table(payload: bytes) -> list[bytes]:
    """The frames of a TABLE payload; EnvelopeError if the entries do not fill it exactly."""
    frames: list[bytes] = []
    at, end = 0, len(payload)
    while at < end:
        if at + _ENTRY.size > end:
            raise EnvelopeError("truncated table entry")
        (size,) = _ENTRY.unpack_from(payload, at)
        at += _ENTRY.size
        if size == 0 or at + size > end:
            raise EnvelopeError("table entry overruns the payload")
        frames.append(payload[at : at + size])
        at += size
    return frames


def _from_the_neighbour_itself(envelope: Envelope) -> bool:
    """A neighbour-only envelope, unrelayed (its author is to be the link's peer).

    The link already proves who sent it, and nobody else ever relies on its
    signature, so its check is skipped; the author must still be the peer, or
    it would teach us a path to someone else through that link.
    """
    return envelope.type in NEIGHBOUR_ONLY and envelope.hop_limit == 1 and envelope.hops == 0


@dataclass(frozen=True)
class RouterConfig:
    """Bounds and timings of the routing core; the defaults suit a small mesh."""

    seen_capacity: int = 100_000
    seen_ttl: float = 600.0
    max_routes: int = 10_000
    route_ttl: float = 90.0
    announce_interval: float = 30.0
    announce_jitter: float = 0.2
    max_age: float = 7 * 24 * 3600.0
    max_future: float = 300.0
    link_rate: float = 20_000.0
    link_burst: float = 40_000.0
    ban_threshold: float = 100.0
    penalty_decay: float = 1.0
    ban_duration: float = 600.0
    max_bans: int = 10_000
    reshare_delay: float = 1.0  # wait before re-sharing a path a neighbour withdrew
    link_settle: float = 2.0  # a link this young swapped path tables on link-up
    park_ttl: float = 30.0  # a directed envelope whose path was lost waits this long
    max_parked: int = 1000  # parked envelopes at most; past it they flood as before
    room_gossip: bool = False  # room envelopes go through the topic mesh (mesh/routing/gossip.py)
    gossip: GossipConfig = field(default_factory=GossipConfig)


#: how room envelopes travel (``meshnotes run --rooms``): to every link; down each author's
#: reverse shortest-path tree with IHAVE/IWANT repair (:mod:`mesh.routing.gossip`); or ``auto``,
#: which floods while the node knows fewer than AUTO_TREE_FROM destinations and takes the
#: tree past that (docs/scale.md measures all three)
ROOM_MODES = ("flood", "tree", "auto")
AUTO_TREE_FROM = 64


def room_routing(
    mode: str, config: RouterConfig | None = None, tree_from: int = AUTO_TREE_FROM
) -> RouterConfig:
    """`config` (default: the defaults) with room envelopes routed as `mode` says.

    `tree_from` is where ``auto`` switches from flooding to the tree, in known destinations.
    """
    if mode not in ROOM_MODES:
        raise ValueError(f"room mode must be one of {', '.join(ROOM_MODES)}, not {mode!r}")
    config = config or RouterConfig()
    if mode == "flood":
        return replace(config, room_gossip=False)
    tree_from = tree_from if mode == "auto" else 0
    return replace(
        config, room_gossip=True, gossip=replace(config.gossip, tree=True, tree_from=tree_from)
    )


def room_mode(config: RouterConfig) -> str:
    """The ROOM_MODES name of `config`'s room routing (``topic mesh`` for a gossipsub mesh)."""
    if not config.room_gossip:
        return "flood"
    if not config.gossip.tree:
        return "topic mesh"
    return "auto" if config.gossip.tree_from else "tree"


#: penalty points per drop reason; reasons not listed cost nothing
PENALTIES: dict[str, float] = {
    "malformed": 20.0,
    "bad_signature": 25.0,
    "future": 5.0,
    "rate_limited": 0.5,
    # an envelope for us handed up again within the replay interval of its last redelivery:
    # a mailbox hands a copy over once per link-up; only a replayer sends it again and again
    "replayed": 1.0,
}


@dataclass(slots=True)  # a node holds one per peer in the mesh: no __dict__ each
class Route:
    """How to reach `dest`: through link `link` (to neighbour `next_hop`), `hops` links away."""

    dest: bytes
    link: int
    next_hop: bytes
    hops: int
    expires: float
    announce: bytes | None = None  # latest announce of dest, re-encoded for passing on
    # another link whose neighbour sent us an announce of dest at the same distance: a
    # feasible successor (it was closer to dest than we are, so its path is not through
    # us), taken without a word to anyone when `link` goes down or withdraws dest
    alt: int | None = None
    # links (as _Link.bit) whose neighbour passed us an announce of dest from no farther
    # than we are: it has a path of its own, not through us (room trees skip it)
    near: int = 0


_NEVER = float("inf")


@dataclass(slots=True)
class _Link:
    peer: bytes
    bucket: TokenBucket
    since: float = 0.0  # when it came up
    bit: int = 0  # this link's bit in Route.near (a slot free while it lives)
    # while the link is younger than link_settle: destinations whose path we relearned
    # and its peer has not passed us since (sent in one TABLE when the link settles)
    owed: dict[bytes, None] | None = None  # (a dict: in order, so runs repeat exactly)


@dataclass
class Router:
    """Routing state of one node; see the module docstring for the rules."""

    identity: Identity
    now: float
    config: RouterConfig = field(default_factory=RouterConfig)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._me = self.identity.public_key  # read per envelope: a property builds it
        self.seen = SeenCache(self.config.seen_capacity, self.config.seen_ttl)
        #: envelopes for us handed up again (redelivered) lately: replays of them are refused
        self.redeliveries = ReplayGuard()
        self.routes: dict[bytes, Route] = {}
        self.links: dict[int, _Link] = {}
        self.counters: dict[str, int] = {}
        self.penalties: dict[bytes, PenaltyScore] = {}
        self.bans: dict[bytes, float] = {}
        self.seq = 0
        self._next_announce = self.now
        self._route_check = self.now  # no path expires before this
        self._last_announce: Envelope | None = None
        cfg = self.config
        self.lot = ParkingLot(cfg.park_ttl, cfg.max_parked, cfg.max_routes, self.count)
        self.offers = Offers(cfg.reshare_delay, self.rng)
        self.gossip = Gossip(self.config.gossip, self.rng) if self.config.room_gossip else None
        self._next_settle = _NEVER  # when the youngest unsettled link settles
        #: checks an encoded envelope's signature (a simulator may share verdicts)
        self.check_signature: Callable[[bytes], bool | None] = wire_signature_holds

    # -- events --------------------------------------------------------------

    def link_up(self, link: int, peer: bytes, now: float) -> list[Action]:
        """A link to `peer` finished its handshake: share what we know with it."""
        if self.is_banned(peer, now):
            self.count("dropped_banned")
            return [Close(link, "banned")]
        bucket = TokenBucket.full(self.config.link_rate, self.config.link_burst, now)
        used = 0
        for state in self.links.values():
            used |= state.bit
        self.links[link] = _Link(peer, bucket, now, ~used & (used + 1), {})
        self._next_settle = min(self._next_settle, now + self.config.link_settle)
        if self.gossip is not None:
            self.gossip.add_peer(link, peer)
        self._learn(peer, link, 1, now, None)
        actions: list[Action] = [Send(link, self._link_up_announce(now).encode())]
        table = []
        for route in self.routes.values():
            # the stored copy carries our distance as its hop count (byte 0); byte 4 is
            # its hop limit: pass it on only if it may cross one more link
            stored = route.announce
            if stored is None or route.link == link or route.expires <= now:
                continue
            if stored[0] + 1 <= stored[4]:
                table.append(stored)
        return actions + self._table(link, table, now) + self._release(now)

    def link_down(self, link: int, now: float) -> list[Action]:
        """A link closed: forget it and every path through it, and tell the neighbours."""
        gone = self.links.pop(link, None)
        if gone is None:
            return []
        if self.gossip is not None:
            self.gossip.remove_peer(link)
        if len(self.offers):
            self.offers.drop_link(link)
        keep = ~gone.bit  # the slot may go to the next link: clear it everywhere
        broken: list[Route] = []
        for route in self.routes.values():
            route.near &= keep
            if route.alt == link:
                route.alt = None
            elif route.link == link:
                broken.append(route)
        broken = [r for r in broken if not self._switch(r)]
        for route in broken:
            del self.routes[route.dest]
        # another link to the same neighbour keeps it reachable
        for other, state in self.links.items():
            if state.peer == gone.peer:
                self._learn(gone.peer, other, 1, now, None)
        broken = [r for r in broken if r.dest not in self.routes]
        self._mark_lost(broken, now)
        return self._withdraw([r.dest for r in broken], None, now) + self._release(now)

    def originate(self, envelope: Envelope, now: float) -> list[Action]:
        """Send an envelope authored here into the mesh."""
        self.count("originated")
        self.seen.add(envelope.message_id, now)
        if envelope.dest_kind == DestKind.PEER and envelope.dest == self._me:
            return [Deliver(envelope, None)]
        if self.gossip is not None and envelope.dest_kind == DestKind.ROOM:
            published = self.gossip.publish(
                envelope.dest,
                envelope.message_id,
                envelope.encode(),
                now,
                list(self.links) if self.gossip.config.tree else None,  # all are farther
            )
            return self._gossiped(published, now)
        actions = self._forward(envelope, None, now)
        if not actions and self.lot.waiting(envelope) is None:
            self.count("dropped_no_link")
        return actions

    def receive(
        self, link: int, data: bytes, now: float, signature_ok: bool | None = None
    ) -> list[Action]:
        """Handle one encoded envelope that arrived on `link`.

        `signature_ok` is the result of a signature check the caller already did
        on these very bytes (say, in a thread pool: see :func:`check_signatures`);
        None means check it here.
        """
        actions = self._receive(link, data, now, signature_ok)
        if self.lot.has_ready:
            actions += self._release(now)
        return actions

    def _receive(
        self, link: int, data: bytes, now: float, signature_ok: bool | None
    ) -> list[Action]:
        state = self.links.get(link)
        if state is None:
            self.count("dropped_unknown_link")
            return []
        self.count("received")
        if not state.bucket.take(now):
            return self._reject(link, "rate_limited", now)
        return self._frame(state, link, data, now, signature_ok)

    def _frame(
        self, state: _Link, link: int, data: bytes, now: float, signature_ok: bool | None
    ) -> list[Action]:
        """Rules 2 on of the module docstring, for a frame (or TABLE entry) from `link`."""
        # most frames in a busy mesh are duplicates: drop those from the raw bytes
        message_id = wire_message_id(data)  # None only for frames decode() refuses
        seen = message_id is not None and self.seen.seen(message_id, now)
        if seen and message_id is not None:  # (the second test only tells mypy so)
            kind = data[2]
            if kind == EnvelopeType.ANNOUNCE:
                author = data[AUTHOR_AT:AUTHOR_END]
                if state.owed:
                    state.owed.pop(author, None)  # it has a path: nothing owed to it
                if self._has_path(author, data[0], link, now):
                    self.offers.cancel(link, author)  # as below, for one that goes on
                    return self._duplicate()
            elif self.gossip is not None and data[DEST_AT - 1] == DestKind.ROOM:
                self.gossip.heard(message_id, link)  # no IHAVE of it to that neighbour
                return self._duplicate()
            elif (
                kind < EnvelopeType.DATA
                or data[DEST_AT - 1] != DestKind.PEER
                or data[DEST_AT : DEST_AT + 32] != self._me
            ):
                return self._duplicate()  # not one to hand up again
        try:
            envelope = Envelope.decode(data)
        except EnvelopeError:
            return self._reject(link, "malformed", now)
        if message_id is not None:
            envelope.__dict__["_message_id"] = message_id  # as Envelope.message_id caches it
        age = now - envelope.timestamp_ms / 1000.0
        if age > self.config.max_age:
            return self._reject(link, "stale", now)
        if age < -self.config.max_future:
            return self._reject(link, "future", now)
        if envelope.type == EnvelopeType.ANNOUNCE:
            # the neighbour passes this announce on, so it has a path: no need to offer ours
            self.offers.cancel(link, envelope.author)
            if state.owed:
                state.owed.pop(envelope.author, None)
        message_id = envelope.message_id
        if seen:
            if self._stored_for_me(envelope) and self.redeliveries.seen_recently(message_id, now):
                return self._reject(link, "replayed", now)  # before any signature check
            if self._is_redelivery(envelope):
                self.redeliveries.allow(message_id, now)
                return [Deliver(envelope, link)]
            return self._relearn(envelope, data, link, now) or self._duplicate()
        if signature_ok is None:
            if envelope.author == state.peer and _from_the_neighbour_itself(envelope):
                signature_ok = True  # the link's handshake and box-stream MACs vouch for it
            else:
                signature_ok = bool(self.check_signature(data))
        if not signature_ok:
            return self._reject(link, "bad_signature", now)
        self.seen.add(message_id, now)
        if envelope.author == self._me:
            return self._reject(link, "own_echo", now)

        distance = envelope.hops + 1
        relayed = envelope.with_hops(distance)
        is_announce = envelope.type == EnvelopeType.ANNOUNCE
        self._learn(envelope.author, link, distance, now, relayed.encode() if is_announce else None)

        if is_announce:
            route = self.routes.get(envelope.author)
            if route is not None:
                # every other neighbour gets this copy and may take its path through us;
                # only their own copies, coming back, say otherwise
                route.near = 0
                self._heard(route, link, envelope.hops)
            return self._flood(relayed, link)
        if envelope.type == EnvelopeType.WITHDRAW:
            return self._on_withdraw(envelope, link, now)
        if envelope.type == EnvelopeType.TABLE:
            return self._on_table(envelope, state, link, now)
        if envelope.type == EnvelopeType.INVENTORY:
            return [Deliver(envelope, link)]  # for this neighbour only; never passed on
        if envelope.type in CONTROL_TYPES:
            return self._on_gossip_control(envelope, link, now)
        if envelope.type == EnvelopeType.ADDRESS:
            # peer exchange: records spread as far as their (small) hop limit allows
            return [Deliver(envelope, link), *self._flood(relayed, link)]
        if envelope.dest_kind == DestKind.PEER and envelope.dest == self._me:
            self.count("delivered")
            return [Deliver(envelope, link)]
        actions: list[Action] = []
        if envelope.dest_kind == DestKind.ROOM:
            actions.append(Deliver(envelope, link))
            if self.gossip is not None:
                # the topic mesh decides where room traffic goes, within the hop limit
                out = relayed.encode() if distance + 1 <= envelope.hop_limit else None
                if out is None:
                    self.count("dropped_hop_limit")
                spare = envelope.hop_limit - distance - 1
                tree = self._tree(envelope.author, link, now) if self.gossip.config.tree else None
                gossiped = self.gossip.receive(
                    envelope.dest, message_id, out, link, now, spare, tree
                )
                return actions + self._gossiped(gossiped, now)
        elif envelope.type >= EnvelopeType.DATA:
            # store-and-forward: the destination may be offline; keep a copy to hand over
            store = not self._is_neighbour(envelope.dest)
            if store or envelope.type == EnvelopeType.RECEIPT:
                actions.append(Keep(envelope, store))
        return actions + self._forward(envelope, link, now)

    def tick(self, now: float) -> list[Action]:
        """Do timed work: announce when due, expire paths, seen ids, penalties and bans."""
        self.now = now
        self.seen.expire(now)
        self.redeliveries.expire(now)
        if now >= self._route_check:
            # a scan of the whole table only when some path may have run out: new paths
            # expire later than every path already there, so the minimum stays a bound
            for dest in [d for d, r in self.routes.items() if r.expires <= now]:
                del self.routes[dest]
            self._route_check = min((r.expires for r in self.routes.values()), default=_NEVER)
        for peer in [p for p, until in self.bans.items() if until <= now]:
            del self.bans[peer]
        for peer in [p for p, s in self.penalties.items() if s.current(now) == 0.0]:
            del self.penalties[peer]
        self.lot.expire(now)
        actions: list[Action] = self._last_resorts() if self.lot.due_floods else []
        actions += self._due_reshares(now)
        if now >= self._next_settle:
            actions += self._settle(now)
        if self.gossip is not None and now >= self.gossip.next_deadline():
            actions += self._gossiped(self.gossip.heartbeat(now), now)
        if now >= self._next_announce:
            spread = self.config.announce_interval * self.config.announce_jitter
            self._next_announce = (
                now + self.config.announce_interval + self.rng.uniform(-spread, spread)
            )
            if self.links:
                actions += self._flood(self._make_announce(now), None)
        return actions

    def next_deadline(self) -> float:
        """The time by which :meth:`tick` must next be called."""
        # asked after every event a node handles: comparisons, not min() over a list
        deadline = self._next_announce
        if self._next_settle < deadline:
            deadline = self._next_settle
        if self.gossip is not None:
            due = self.gossip.next_deadline()
            if due < deadline:
                deadline = due
        due = self.lot.next_deadline()
        if due < deadline:
            deadline = due
        if len(self.offers):
            due = self.offers.next_deadline()
            if due < deadline:
                deadline = due
        return deadline

    # -- building envelopes ------------------------------------------------

    def make(
        self,
        type: int,
        now: float,
        *,
        dest_kind: DestKind = DestKind.NONE,
        dest: bytes = b"",
        payload: bytes = b"",
        flags: int = 0,
        hop_limit: int = MAX_HOPS,
        seq: int | None = None,
    ) -> Envelope:
        """Sign a new envelope from this node.

        Without `seq`, it takes the router's next (in-memory) sequence number;
        layers that need a persistent per-author sequence, such as room logs,
        pass their own.
        """
        if seq is None:
            self.seq += 1
            seq = self.seq
        return Envelope.create(
            self.identity,
            type,
            dest_kind=dest_kind,
            dest=dest,
            timestamp_ms=int(now * 1000),
            seq=seq,
            payload=payload,
            flags=flags,
            hop_limit=hop_limit,
        )

    # -- queries -------------------------------------------------------------

    def route_to(self, dest: bytes, now: float) -> Route | None:
        route = self.routes.get(dest)
        return route if route is not None and route.expires > now else None

    def _is_neighbour(self, peer: bytes) -> bool:
        return any(state.peer == peer for state in self.links.values())

    def is_banned(self, peer: bytes, now: float) -> bool:
        until = self.bans.get(peer)
        return until is not None and until > now

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def status(self, now: float) -> dict[str, Any]:
        """A JSON-ready summary: routes, counters, and every cache's size against its bound."""
        routes = [
            {
                "dest": encode_peer_id(r.dest),
                "next_hop": encode_peer_id(r.next_hop),
                "hops": r.hops,
                "expires_in": None if r.hops == 1 else round(r.expires - now, 1),
            }
            for r in sorted(self.routes.values(), key=lambda r: (r.hops, r.dest))
            if r.expires > now
        ]
        return {
            "routes": routes,
            "counters": dict(sorted(self.counters.items())),
            "caches": {
                "seen_ids": {"size": len(self.seen), "bound": self.seen.capacity},
                "routes": {"size": len(self.routes), "bound": self.config.max_routes},
                "bans": {"size": len(self.bans), "bound": self.config.max_bans},
                "parked": {"size": len(self.lot), "bound": self.config.max_parked},
                "redeliveries": {
                    "size": len(self.redeliveries),
                    "bound": self.redeliveries.capacity,
                },
            },
            "bans": [encode_peer_id(p) for p, until in self.bans.items() if until > now],
            "rooms": self._rooms_status(),
        }

    def _rooms_status(self) -> dict[str, Any]:
        mode = room_mode(self.config)
        if self.gossip is None:
            return {"mode": mode, "routing": "flood"}
        tree_from = self.config.gossip.tree_from
        routing = "topic mesh"
        if self.config.gossip.tree:
            routing = "flood" if self._small_mesh() else "tree"
        return {
            "mode": mode,
            "routing": routing,  # what the mode does now
            "tree_from_destinations": tree_from,
            "topics": {"size": len(self.gossip.topics), "bound": self.gossip.config.max_topics},
            "cached_messages": len(self.gossip.cache),
        }

    # -- internals -----------------------------------------------------------

    def _make_announce(self, now: float) -> Envelope:
        self._last_announce = self.make(EnvelopeType.ANNOUNCE, now)
        return self._last_announce

    def _link_up_announce(self, now: float) -> Envelope:
        """Our announce for a new neighbour: a recent one again, when there is one.

        A fresh announce floods the whole mesh; the last one (until the next
        periodic one replaces it) is news only where it has not been — the new
        neighbour, or a partition the new link joins — so a node coming back
        with many links, and each of its neighbours, costs the mesh at most one
        flood, not one per link. Receivers time a path from when they get it.
        """
        last = self._last_announce
        if last is not None and now - last.timestamp_ms / 1000 < self.config.announce_interval:
            return last
        return self._make_announce(now)

    def _learn(self, dest: bytes, link: int, hops: int, now: float, announce: bytes | None) -> None:
        if dest == self._me or link not in self.links:
            return
        next_hop = self.links[link].peer
        if dest != next_hop:
            # the hop count is unsigned: a relay must not pass off another peer as its
            # neighbour, whose path would never expire
            hops = max(hops, 2)
        expires = float("inf") if hops == 1 else now + self.config.route_ttl
        current = self.routes.get(dest)
        better = (
            current is None
            or current.expires <= now
            or hops < current.hops
            or (current.link == link and hops <= current.hops)
        )
        if not better:
            if current is not None:
                if current.link == link:
                    if announce is not None:
                        current.announce = announce
                elif hops == current.hops and hops > 1:
                    current.alt = link
            return
        if current is None and len(self.routes) >= self.config.max_routes:
            victim = min(self.routes.values(), key=lambda r: r.expires)
            if victim.expires == float("inf"):
                self.count("dropped_route_table_full")
                return
            del self.routes[victim.dest]
            self.count("routes_evicted")
        if current is not None and current.link == link and current.hops == hops:
            current.expires = expires  # the same path, refreshed: fallback and near still hold
            if announce is not None:
                current.announce = announce
        else:
            keep = announce if announce is not None else (current.announce if current else None)
            self.routes[dest] = Route(dest, link, next_hop, hops, expires, keep)
        self.lot.found(dest)

    def _heard(self, route: Route, link: int, their_hops: int) -> None:
        """The neighbour on `link` passed us an announce of route.dest from `their_hops` away."""
        state = self.links.get(link)
        if state is None:
            return
        if their_hops <= route.hops:
            route.near |= state.bit
        else:
            route.near &= ~state.bit

    def _tree(self, author: bytes, came_from: int, now: float) -> list[int]:
        """Where `author`'s room envelope goes on from here: to neighbours not nearer to it.

        Each node hears an announce from every neighbour but the ones that took
        their path through it, so the links left are those of the author's
        reverse shortest-path tree (and of neighbours farther away on another
        branch); with no path known, or in a mesh smaller than
        ``GossipConfig.tree_from``, every link.
        """
        route = self.route_to(author, now)
        skip = 0 if route is None or self._small_mesh() else route.near
        return [k for k, st in self.links.items() if k != came_from and not st.bit & skip]

    def _small_mesh(self) -> bool:
        """Fewer known destinations than GossipConfig.tree_from: the tree is every link."""
        return len(self.routes) < self.config.gossip.tree_from

    def _switch(self, route: Route) -> bool:
        """Move a path whose link broke (or withdrew it) to its fallback; False when it has none.

        The fallback neighbour was as close to the destination as the broken one,
        so the distance, the stored announce and every neighbour's path through us
        stay true: nobody needs to hear of the change. If that neighbour lost its
        path too, its own withdrawal follows and finds no fallback left.
        """
        alt = route.alt
        route.alt = None
        state = self.links.get(alt) if alt is not None else None
        if state is None:
            return False
        route.link = alt  # type: ignore[assignment]
        route.next_hop = state.peer
        self.count("routes_switched")
        return True

    def _is_redelivery(self, envelope: Envelope) -> bool:
        """A stored-type envelope for us, seen before: a mailbox handing it over again.

        It goes up again so that the layer above can receipt it once more (the
        first receipt may have been lost); that layer deduplicates.
        """
        if not self._stored_for_me(envelope):
            return False
        try:
            envelope.verify()
        except EnvelopeError:
            return False
        self.count("redelivered")
        return True

    def _stored_for_me(self, envelope: Envelope) -> bool:
        return (
            envelope.type >= EnvelopeType.DATA
            and envelope.dest_kind == DestKind.PEER
            and envelope.dest == self._me
        )

    def _has_path(self, author: bytes, hops: int, link: int, now: float) -> bool:
        """For an announce seen before, from `hops` away: whether our path makes it a duplicate.

        An equal-cost copy on another link makes that link the path's fallback.
        """
        if author == self._me:
            return True
        route = self.route_to(author, now)
        if route is None:
            return False
        if route.link == link:
            # a neighbour back on a new link sends its last announce again: the mesh, which
            # withdrew its paths to it, has seen that one, so it must travel on from here
            return route.announce is not None
        if hops + 1 == route.hops > 1:
            route.alt = link  # an equal-cost copy: keep that neighbour as a fallback
        self._heard(route, link, hops)
        return True

    def _relearn(self, envelope: Envelope, data: bytes, link: int, now: float) -> list[Action]:
        """Take a path from an announce seen before, if we have lost every path to its author.

        After a withdrawal, neighbours re-share announces we saw already; without
        this the path would stay unknown until the author's next announce. It
        floods on only when it created a path (or stored the first announce of a
        neighbour on a new link), which ends the spread where paths survived.
        """
        author = envelope.author
        if envelope.type != EnvelopeType.ANNOUNCE or self._has_path(
            author, envelope.hops, link, now
        ):
            return []
        lost = self.lot.lost.get(author)
        # the id covers the signed part only: this copy's signature, which we would store
        # and pass on, is unchecked yet (a bad one is just a duplicate), unless these are
        # the very bytes of the path we lost (but for the unsigned hop count), checked then
        if (lost is None or lost[1] is None or lost[1][1:] != data[1:]) and not (
            self.check_signature(data)
        ):
            return []
        relayed = envelope.with_hops(envelope.hops + 1)
        self._learn(author, link, relayed.hops, now, relayed.encode())
        route = self.route_to(author, now)
        if route is None or route.announce is None:
            return []
        self.count("routes_relearned")
        # it goes on to every other neighbour, which may take its path through us (those
        # with paths of their own drop it, which cancels the re-share they had in mind)
        route.near = 0
        self._heard(route, link, envelope.hops)
        # links that came up lately get it only if their peer does not send it to us first:
        # on link-up each side sends its table, and a node coming back would otherwise
        # echo each table it gets to every other new neighbour
        for other, state in self.links.items():
            if other != link and state.owed is not None:
                state.owed[author] = None
        return self._flood(relayed, link, settled_only=True)

    def _withdraw(self, dests: list[bytes], came_from: int | None, now: float) -> list[Action]:
        """Tell neighbours (but `came_from`) that we no longer reach `dests`.

        A neighbour we were to re-share a destination with withdrew it to us and has
        had no announce of it from us since: it has no path through us to drop, so it
        is not told (about a fifth fewer notices in the scale runs of docs/scale.md).
        """
        targets = [link for link in self.links if link != came_from]
        if not dests or not targets:
            return []
        groups: dict[tuple[bytes, ...], list[int]] = {}
        if len(self.offers):
            pending = self.offers.pending
            for link in targets:
                told = tuple(d for d in dests if not pending(link, d))
                if told:
                    groups.setdefault(told, []).append(link)
                if len(told) < len(dests):
                    self.count("withdrawals_spared", len(dests) - len(told))
        else:
            groups[tuple(dests)] = targets
        actions: list[Action] = []
        for told, links in groups.items():
            for start in range(0, len(told), MAX_WITHDRAW):
                payload = b"".join(told[start : start + MAX_WITHDRAW])
                notice = self.make(EnvelopeType.WITHDRAW, now, payload=payload, hop_limit=1)
                self.seen.add(notice.message_id, now)
                data = notice.encode()
                actions += [Send(link, data) for link in links]
        if groups:
            self.count("withdrawals_sent")
        return actions

    def _on_withdraw(self, envelope: Envelope, link: int, now: float) -> list[Action]:
        """A neighbour lost paths: drop ours through it, and pass the news on."""
        payload = envelope.payload
        if len(payload) % 32 or envelope.hop_limit != 1:
            return self._reject(link, "malformed", now)
        lost: list[Route] = []
        bit = self.links[link].bit
        for start in range(0, len(payload), 32):
            dest = payload[start : start + 32]
            route = self.routes.get(dest)
            if route is None:
                continue
            route.near &= ~bit  # it lost its path: it may take ours
            if route.link == link:
                if route.hops > 1 and not self._switch(route):
                    del self.routes[dest]
                    lost.append(route)
            else:
                if route.alt == link:
                    route.alt = None  # that neighbour lost it: no fallback any more
                if route.announce is not None and route.expires > now:
                    self._offer(link, dest, now)  # we reach it another way: offer it back
        self._mark_lost(lost, now)
        return self._withdraw([r.dest for r in lost], link, now)

    def _offer(self, link: int, dest: bytes, now: float) -> None:
        """Re-share our path to `dest` on `link` after a wait (see :mod:`mesh.routing.reshare`)."""
        if not self.offers.offer(link, dest, now):
            self.count("dropped_reshare_full")

    def _due_reshares(self, now: float) -> list[Action]:
        """Send the re-shares that are due, if the path still holds and may cross one more link."""
        actions: list[Action] = []
        for link, dest in self.offers.due(now):
            route = self.route_to(dest, now)
            if link not in self.links or route is None or route.link == link:
                continue
            stored = route.announce
            if stored is not None and stored[0] + 1 <= stored[4]:
                self.count("reshared")
                route.near &= ~self.links[link].bit  # it may take this path through us
                actions.append(Send(link, stored))
        return actions

    def _settle(self, now: float) -> list[Action]:
        """Links up for link_settle: send each, in a TABLE, the paths we relearned since
        it came up and its peer has not passed us (it lacks them; see :meth:`_relearn`)."""
        actions: list[Action] = []
        settle = self.config.link_settle
        self._next_settle = _NEVER
        for link, state in self.links.items():
            owed = state.owed
            if owed is None:
                continue
            if state.since + settle > now:
                self._next_settle = min(self._next_settle, state.since + settle)
                continue
            state.owed = None
            table = []
            for dest in owed:
                route = self.route_to(dest, now)
                if route is None or route.link == link:
                    continue
                stored = route.announce
                if stored is not None and stored[0] + 1 <= stored[4]:
                    route.near &= ~state.bit  # it may take this path through us
                    table.append(stored)
            actions += self._table(link, table, now)
        return actions

    def _table(self, link: int, frames: list[bytes], now: float) -> list[Action]:
        """Send stored announces to one neighbour as TABLE envelopes (signed once per frame)."""
        if not frames:
            return []
        self.count("table_entries_sent", len(frames))
        return [
            Send(link, self.make(EnvelopeType.TABLE, now, payload=part, hop_limit=1).encode())
            for part in pack_table(frames)
        ]

    def _on_table(self, envelope: Envelope, state: _Link, link: int, now: float) -> list[Action]:
        """A neighbour's stored announces: each is taken as if it had come alone."""
        if envelope.hop_limit != 1 or envelope.author != state.peer:
            return self._reject(link, "malformed", now)  # a table is the neighbour's own
        try:
            frames = unpack_table(envelope.payload)
        except EnvelopeError:
            return self._reject(link, "malformed", now)
        # each entry costs the token it would have cost as a frame of its own
        if len(frames) > 1 and not state.bucket.take(now, len(frames) - 1):
            return self._reject(link, "rate_limited", now)
        self.count("table_entries", len(frames))
        actions: list[Action] = []
        for frame in frames:
            if len(frame) < 3 or frame[2] != EnvelopeType.ANNOUNCE:
                actions += self._reject(link, "malformed", now)
            else:
                actions += self._frame(state, link, frame, now, None)
            if self.links.get(link) is not state or state.peer in self.bans:
                break  # banned by its own entries
        return actions

    def _mark_lost(self, routes: list[Route], now: float) -> None:
        """Remember that these paths broke: traffic for them waits for a new path."""
        self.lot.mark_lost([(r.dest, r.announce) for r in routes], now + self.config.route_ttl)

    def _release(self, now: float) -> list[Action]:
        """Send parked envelopes whose destination has a path again."""

        def path(dest: bytes) -> int | None:
            route = self.route_to(dest, now)
            return route.link if route is not None and route.link in self.links else None

        actions: list[Action] = [Send(link, d) for link, d in self.lot.release(path, now)]
        return actions + self._last_resorts() if self.lot.due_floods else actions

    def _last_resorts(self) -> list[Action]:
        """Flood our own FLOOD-flagged retries whose wait for a path ran out."""
        actions: list[Action] = []
        for envelope in self.lot.due_floods:
            actions += self._flood(envelope, None)
        self.lot.due_floods.clear()
        return actions

    def _forward(self, envelope: Envelope, came_from: int | None, now: float) -> list[Action]:
        # hops counts links already crossed; one more must stay within the limit
        next_hops = envelope.hops + (0 if came_from is None else 1)
        if next_hops + 1 > envelope.hop_limit:
            self.count("dropped_hop_limit")
            return []
        out = envelope if came_from is None else envelope.with_hops(next_hops)
        if envelope.dest_kind == DestKind.PEER:
            route = self.route_to(envelope.dest, now)
            if route is None or route.link not in self.links:
                # a relay still floods what its author flagged FLOOD (a path may lie); its
                # author waits for a path first, and floods it only if none comes in time
                origin = came_from is None
                may_park = origin or not envelope.flood
                if may_park and self.lot.is_lost(envelope.dest, now):
                    # the author may be gone before a path comes back: the first time, the
                    # neighbour longest linked gets a copy too, which its mailbox keeps
                    handoff = (
                        origin
                        and envelope.type >= EnvelopeType.DATA
                        and bool(self.links)
                        and self.lot.waiting(out) is None
                    )
                    if self.lot.park(out, now, last_resort=origin and envelope.flood):
                        if not handoff:
                            return []
                        self.count("parked_handed_to_a_neighbour")
                        return [Send(next(iter(self.links)), out.encode())]
            elif not envelope.flood and route.link != came_from:
                self.count("relayed" if came_from is not None else "sent_direct")
                return [Send(route.link, out.encode())]
        return self._flood(out, came_from)

    def _flood(
        self, envelope: Envelope, came_from: int | None, settled_only: bool = False
    ) -> list[Action]:
        """Send on every link but `came_from` (and, if `settled_only`, but young links)."""
        if came_from is not None and envelope.hops + 1 > envelope.hop_limit:
            self.count("dropped_hop_limit")
            return []
        data = envelope.encode()
        announce_of = envelope.author if envelope.type == EnvelopeType.ANNOUNCE else None
        if not settled_only:
            targets = [link for link in self.links if link != came_from]
        else:
            targets = [
                link
                for link, state in self.links.items()
                if link != came_from and state.owed is None
            ]
        if targets:
            self.count("flooded")
            if announce_of is not None and len(self.offers):
                for link in targets:
                    self.offers.cancel(link, announce_of)  # they have it from us now
        return [Send(link, data) for link in targets]

    def _on_gossip_control(self, envelope: Envelope, link: int, now: float) -> list[Action]:
        """GRAFT/PRUNE/IHAVE/IWANT from a neighbour: for the topic mesh only, never passed on."""
        if envelope.hop_limit != 1:
            return self._reject(link, "malformed", now)
        if self.gossip is None:
            self.count("dropped_gossip_off")
            return []
        try:
            actions = self.gossip.control(
                link, envelope.type, envelope.payload, lambda m: self.seen.seen(m, now), now
            )
        except EnvelopeError:
            return self._reject(link, "malformed", now)
        return self._gossiped(actions, now)

    def _gossiped(self, actions: list[GossipAction], now: float) -> list[Action]:
        """Turn the topic mesh's actions into sends, signing its control envelopes."""
        out: list[Action] = []
        for action in actions:
            if action.link not in self.links:
                continue
            if isinstance(action, Control):
                notice = self.make(action.type, now, payload=action.payload, hop_limit=1)
                self.seen.add(notice.message_id, now)
                self.count("gossip_control_sent")
                out.append(Send(action.link, notice.encode()))
            else:
                self.count("gossip_forwarded")
                out.append(Send(action.link, action.data))
        return out

    def _duplicate(self) -> list[Action]:
        # _reject(link, "duplicate", now) for the most common drop of all: it costs no points
        counters = self.counters
        counters["dropped_duplicate"] = counters.get("dropped_duplicate", 0) + 1
        return []

    def _reject(self, link: int, reason: str, now: float) -> list[Action]:
        self.count(f"dropped_{reason}")
        if self.gossip is not None and reason in ("malformed", "bad_signature"):
            self.gossip.penalise(link)
        points = PENALTIES.get(reason, 0.0)
        if not points or link not in self.links:
            return []
        peer = self.links[link].peer
        score = self.penalties.setdefault(peer, PenaltyScore(self.config.penalty_decay))
        if score.add(points, now) < self.config.ban_threshold:
            return []
        if len(self.bans) >= self.config.max_bans:
            oldest = min(self.bans, key=self.bans.__getitem__)
            del self.bans[oldest]
        self.bans[peer] = now + self.config.ban_duration
        self.count("bans")
        del self.penalties[peer]
        return [Close(other, "banned") for other, st in self.links.items() if st.peer == peer]


def check_signatures(frames: list[bytes]) -> list[bool | None]:
    """Check the author signatures of encoded envelopes; None where one cannot be an envelope.

    Pure and thread-safe: PyNaCl releases the GIL, so a node can run this for a
    burst of frames in a worker thread while its event loop goes on, and pass
    each result to :meth:`Router.receive` as `signature_ok`.
    """
    return [wire_signature_holds(frame) for frame in frames]
