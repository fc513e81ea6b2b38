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
6. then its type picks its handler (:attr:`~mesh.routing.inbound.Inbound.handlers`): announces
   refresh the path table and flood on; withdrawals (a neighbour lost its
   path to some peers) drop our paths through it and pass on; an announce
   seen before still gives a path when we have none (after a withdrawal,
   re-shared announces must work); address records go up to the node and
   flood on within their small hop limit; envelopes for this node are
   delivered; others are forwarded (:mod:`mesh.routing.forwarding`) as long
   as the hop limit allows (``hop_limit``); stored types (>= DATA) for a peer
   that is not a neighbour are also kept for the mailbox (:class:`Keep`).
7. with ``RouterConfig.room_gossip``, room envelopes go to the topic mesh of
   :mod:`mesh.routing.gossip` instead of every link, and its GRAFT/PRUNE/IHAVE/IWANT
   envelopes (neighbour-only, hop limit 1) are handled here; off, they are
   dropped (``gossip_off``).
8. a room envelope seen before goes on again when this copy crossed fewer
   links than ours, which came close to its hop limit
   (:mod:`mesh.routing.hopmarks`, ``room_passed_on_again``).

The parts: the path table, its fallbacks and route repair
(:mod:`mesh.routing.paths`), forwarding and parking
(:mod:`mesh.routing.forwarding`), rate limits, penalties and bans
(:mod:`mesh.routing.admission`), and TABLE payloads (:mod:`mesh.routing.tables`):
the stored announces a node sends on link-up (and when a link settles),
neighbour-only; each entry is then handled as if it had come alone, from
rule 2 on, and costs its own token. This module owns them, signs what they
ask to send, and answers for the node.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesh.routing.actions import Action, Close, Deliver, Keep, Send
from mesh.routing.admission import PENALTIES, Admission
from mesh.routing.config import (
    AUTO_TREE_FROM,
    ROOM_MODES,
    RouterConfig,
    room_mode,
    room_routing,
)
from mesh.routing.discovery import Discovery
from mesh.routing.forwarding import Forwarder
from mesh.routing.gossip import Gossip
from mesh.routing.inbound import Inbound
from mesh.routing.notices import Notices
from mesh.routing.parking import ParkingLot
from mesh.routing.paths import NEVER, Neighbour, PathTable, Route
from mesh.routing.replay import ReplayGuard
from mesh.routing.reshare import Offers
from mesh.routing.seen import SeenCache
from mesh.routing.tables import pack_table, unpack_table
from mesh.wire.envelope import (
    MAX_HOPS,
    DestKind,
    Envelope,
    wire_signature_holds,
)
from mesh.wire.identity import Identity, encode_peer_id

#: room envelopes kept at most while no link is up (the room log keeps them all for catch-up)
MAX_UNSENT = 1000

__all__ = [
    "AUTO_TREE_FROM",
    "PENALTIES",
    "ROOM_MODES",
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
    "room_mode",
    "room_routing",
    "unpack_table",
]


@dataclass
class Router:
    """Routing state of one node; see the module docstring for the rules."""

    identity: Identity
    now: float
    config: RouterConfig = field(default_factory=RouterConfig)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._me = self.identity.public_key  # read per envelope: a property builds it
        cfg = self.config
        self.seen = SeenCache(cfg.seen_capacity, cfg.seen_ttl)
        #: envelopes for us handed up again (redelivered) lately: replays of them are refused
        self.redeliveries = ReplayGuard()
        self.links: dict[int, Neighbour] = {}
        self.counters: dict[str, int] = {}
        self._next_announce = self.now
        self.lot = ParkingLot(cfg.park_ttl, cfg.max_parked, cfg.max_routes, self.count)
        self.offers = Offers(cfg.reshare_delay, self.rng)
        self.gossip = Gossip(cfg.gossip, self.rng) if cfg.room_gossip else None
        #: room envelopes we authored while no link was up: out on every link once links are
        #: back and settled (sent then to one neighbour, a tree would reach its branch only)
        self.unsent: list[Envelope] = []
        self._send_unsent_at = NEVER
        self.paths = PathTable(
            self._me, cfg, self.links, self.lot, self.offers, self.count, self.now
        )
        self.admission = Admission(cfg, self.count)
        self.forwarding = Forwarder(self.links, self.paths, self.lot, self.offers, self.count)
        self.notices = Notices(self.identity, cfg, self.links, self.seen, self.offers, self.count)
        self.discovery = Discovery(
            self._me,
            cfg,
            self.paths,
            self.lot,
            self.seen,
            self.notices,
            self.forwarding,
            lambda data: self.inbound.check_signature(data),
            self.count,
        )
        if cfg.announce_radius:
            self.forwarding.seek = self.discovery.seek
        self.inbound = Inbound(
            self._me,
            cfg,
            self.links,
            seen=self.seen,
            redeliveries=self.redeliveries,
            paths=self.paths,
            forwarding=self.forwarding,
            notices=self.notices,
            discovery=self.discovery,
            admission=self.admission,
            offers=self.offers,
            gossip=self.gossip,
            counters=self.counters,
            count=self.count,
        )

    # -- what the node and tests read ------------------------------------------

    @property
    def routes(self) -> dict[bytes, Route]:
        """The path table: destination -> path (expired ones until the next tick)."""
        return self.paths.routes

    @property
    def penalties(self) -> dict[bytes, Any]:
        """Penalty scores of peers that sent invalid traffic lately."""
        return self.admission.penalties

    @property
    def bans(self) -> dict[bytes, float]:
        """Banned peers -> when their ban ends."""
        return self.admission.bans

    @property
    def last_announce(self) -> Envelope | None:
        """Our latest announce, if we made one."""
        return self.notices.last_announce

    def announce_widely(self, wide: bool, now: float) -> list[Action]:
        """With an announce radius: whether our announces cross the whole mesh anyway.

        A room member's should: room envelopes go down their author's tree,
        which every relay builds from the author's announces. Turned on, a
        fresh announce goes out now.
        """
        if wide == self.notices.wide:
            return []
        self.notices.wide = wide
        if not wide or not self.config.announce_radius or not self.links:
            return []
        return self.forwarding.flood(self.notices.announce(now), None)

    @property
    def check_signature(self) -> Callable[[bytes], bool | None]:
        """Checks an encoded envelope's signature (a simulator may share verdicts)."""
        return self.inbound.check_signature

    @check_signature.setter
    def check_signature(self, check: Callable[[bytes], bool | None]) -> None:
        self.inbound.check_signature = check

    @property
    def seq(self) -> int:
        """The last sequence number :meth:`make` took."""
        return self.notices.seq

    # -- events --------------------------------------------------------------

    def link_up(self, link: int, peer: bytes, now: float) -> list[Action]:
        """A link to `peer` finished its handshake: share what we know with it."""
        if self.admission.is_banned(peer, now):
            self.count("dropped_banned")
            return [Close(link, "banned")]
        used = 0
        for state in self.links.values():
            used |= state.bit
        self.links[link] = Neighbour(peer, self.admission.bucket(now), now, ~used & (used + 1), {})
        self.paths.link_added(now)
        if self.gossip is not None:
            self.gossip.add_peer(link, peer)
        self.paths.learn(peer, link, 1, now, None)
        if self.unsent and self._send_unsent_at == NEVER:
            self._send_unsent_at = now + self.config.link_settle
        if self.config.local_departures:
            self.paths.came_back(peer, link)
        actions: list[Action] = [Send(link, self.notices.link_up_announce(now).encode())]
        table = self.notices.table(link, self.paths.table_for(link, now), now)
        return actions + table + self.forwarding.release(now)

    def link_down(self, link: int, now: float) -> list[Action]:
        """A link closed: forget it and every path through it, and tell the neighbours."""
        gone = self.links.pop(link, None)
        if gone is None:
            return []
        if self.gossip is not None:
            self.gossip.remove_peer(link)
        lost = self.paths.link_gone(link, gone, now)
        actions = self.notices.withdraw(lost, None, now)
        if self.paths.repair.requests:
            actions += self.notices.ask(self.paths.repair.take_requests(), now)
        return actions + self.forwarding.release(now)

    def originate(self, envelope: Envelope, now: float) -> list[Action]:
        """Send an envelope authored here into the mesh."""
        self.count("originated")
        self.seen.add(envelope.message_id, now)
        if envelope.dest_kind == DestKind.PEER and envelope.dest == self._me:
            return [Deliver(envelope, None)]
        if envelope.dest_kind == DestKind.ROOM and not self.links:
            if len(self.unsent) < MAX_UNSENT:
                self.unsent.append(envelope)
                self.count("room_held_for_links")
            else:
                self.count("dropped_no_link")
            return []
        if self.gossip is not None and envelope.dest_kind == DestKind.ROOM:
            published = self.gossip.publish(
                envelope.dest,
                envelope.message_id,
                envelope.encode(),
                now,
                list(self.links) if self.gossip.config.tree else None,  # all are farther
            )
            return self.notices.gossiped(published, now)
        actions = self.forwarding.forward(envelope, None, now)
        if not actions and self.lot.waiting(envelope) is None:
            self.count("dropped_no_link")
        return actions

    def receive(
        self,
        link: int,
        data: bytes,
        now: float,
        signature_ok: bool | None = None,
        message_id: bytes | None = None,
    ) -> list[Action]:
        """Handle one encoded envelope that arrived on `link`.

        `signature_ok` is the result of a signature check the caller already did
        on these very bytes (say, in a thread pool: see :func:`check_signatures`),
        and `message_id` their ``wire_message_id``, hashed there too; None means
        check (or hash) it here.
        """
        actions = self.inbound.receive(link, data, now, signature_ok, message_id)
        if self.lot.has_ready:
            actions += self.forwarding.release(now)
        return actions

    def tick(self, now: float) -> list[Action]:
        """Do timed work: announce when due, expire paths, seen ids, penalties and bans."""
        self.now = now
        self.seen.expire(now)
        self.redeliveries.expire(now)
        self.paths.expire(now)
        self.admission.expire(now)
        self.lot.expire(now)
        actions: list[Action] = self.forwarding.last_resorts() if self.lot.due_floods else []
        actions += self._reshares(now)
        if now >= self.discovery.next_check:
            actions += self.discovery.tick(now)
        if now >= self._send_unsent_at:
            self._send_unsent_at = NEVER
            held, self.unsent = self.unsent, []
            for envelope in held:
                self.count("room_sent_after_links")
                actions += self.originate(envelope, now)
        if now >= self.paths.repair.next_check:
            # no feasible path came: withdrawn as before, from here outwards
            actions += self.notices.withdraw(self.paths.repair.starved(now), None, now)
        if now >= self.paths.next_settle:
            for link, table in self.paths.settle(now):
                actions += self.notices.table(link, table, now)
        if self.gossip is not None and now >= self.gossip.next_deadline():
            actions += self.notices.gossiped(self.gossip.heartbeat(now), now)
        if now >= self._next_announce:
            spread = self.config.announce_interval * self.config.announce_jitter
            self._next_announce = (
                now + self.config.announce_interval + self.rng.uniform(-spread, spread)
            )
            if self.links:
                actions += self.forwarding.flood(self.notices.announce(now), None)
        return actions

    def _reshares(self, now: float) -> list[Action]:
        """The re-shares due: one frame each, or (local repair) one TABLE per link."""
        due = self.paths.due_reshares(now)
        if not self.config.local_departures:
            return [Send(link, stored) for link, stored in due]
        tables: dict[int, list[bytes]] = {}
        for link, stored in due:
            tables.setdefault(link, []).append(stored)
        return [
            sent
            for link, frames in tables.items()
            for sent in self.notices.table(link, frames, now)
        ]

    def next_deadline(self) -> float:
        """The time by which :meth:`tick` must next be called."""
        # asked after every event a node handles: comparisons, not min() over a list
        deadline = self._next_announce
        if self.paths.next_settle < deadline:
            deadline = self.paths.next_settle
        if self.paths.repair.next_check < deadline:
            deadline = self.paths.repair.next_check
        if self.discovery.next_check < deadline:
            deadline = self.discovery.next_check
        if self._send_unsent_at < deadline:
            deadline = self._send_unsent_at
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

    # -- building envelopes --------------------------------------------------

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
        return self.notices.make(
            type,
            now,
            dest_kind=dest_kind,
            dest=dest,
            payload=payload,
            flags=flags,
            hop_limit=hop_limit,
            seq=seq,
        )

    # -- queries -------------------------------------------------------------

    def route_to(self, dest: bytes, now: float) -> Route | None:
        return self.paths.route_to(dest, now)

    def is_banned(self, peer: bytes, now: float) -> bool:
        return self.admission.is_banned(peer, now)

    def penalise(self, peer: bytes, reason: str, now: float) -> list[Action]:
        """Charge `peer` for a fault a layer above found in what it signed (a bad file chunk).

        Counted as ``penalised_<reason>``; when that bans the peer, its links close.
        """
        self.count(f"penalised_{reason}")
        if not self.admission.charge(peer, reason, now):
            return []
        return [Close(link, "banned") for link, state in self.links.items() if state.peer == peer]

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
            "bans": [encode_peer_id(p) for p in self.admission.banned(now)],
            # how far our announces go (RouterConfig.announce_radius; 0: the whole mesh)
            "announces": {
                "radius": self.config.announce_radius,
                "across_the_mesh": not self.config.announce_radius or self.notices.wide,
            },
            "rooms": self._rooms_status(),
        }

    def _rooms_status(self) -> dict[str, Any]:
        mode = room_mode(self.config)
        if self.gossip is None:
            return {"mode": mode, "routing": "flood"}
        tree_from = self.config.gossip.tree_from
        routing = "topic mesh"
        if self.config.gossip.tree:
            routing = "flood" if self.paths.small_mesh() else "tree"
        return {
            "mode": mode,
            "routing": routing,  # what the mode does now
            "tree_from_destinations": tree_from,
            "topics": {"size": len(self.gossip.topics), "bound": self.gossip.config.max_topics},
            "cached_messages": len(self.gossip.cache),
        }


def check_signatures(frames: list[bytes]) -> list[bool | None]:
    """Check the author signatures of encoded envelopes; None where one cannot be an envelope.

    Pure and thread-safe: PyNaCl releases the GIL, so a node can run this for a
    burst of frames in a worker thread while its event loop goes on, and pass
    each result to :meth:`Router.receive` as `signature_ok`.
    """
    return [wire_signature_holds(frame) for frame in frames]
