"""Inbound frames: rules 2 to 7 of :mod:`mesh.routing.router`, for each frame a link brings.

A frame is first checked from its raw bytes (most frames in a busy mesh are
duplicates), then decoded, timed, checked for its signature, and its author's
path learned from the link it came on; then its type picks its handler
(:attr:`Inbound.handlers`, a table), and every other type is a payload:
delivered here, kept for the mailbox, and forwarded. Drops are counted as
``dropped_<reason>`` and may cost the sending peer penalty points
(:mod:`mesh.routing.admission`). Sans-I/O, owned by
:class:`~mesh.routing.router.Router`.
"""

from __future__ import annotations

from collections.abc import Callable

from mesh.errors import EnvelopeError
from mesh.routing.actions import Action, Close, Deliver, Keep
from mesh.routing.admission import Admission
from mesh.routing.config import RouterConfig
from mesh.routing.discovery import Discovery
from mesh.routing.forwarding import Forwarder
from mesh.routing.gossip import CONTROL_TYPES, Forward, Gossip
from mesh.routing.hopmarks import HopMarks
from mesh.routing.notices import Notices
from mesh.routing.paths import Neighbour, PathTable
from mesh.routing.replay import ReplayGuard
from mesh.routing.reshare import Offers
from mesh.routing.seen import SeenCache
from mesh.routing.signals import SignalGate
from mesh.routing.tables import unpack_table
from mesh.wire.envelope import (
    DestKind,
    Envelope,
    EnvelopeType,
    wire_author,
    wire_hops,
    wire_message_id,
    wire_signature_holds,
    wire_to_peer,
    wire_to_room,
    wire_type,
)

#: envelope types a node sends to its neighbours only, with hop limit 1, never passed on
NEIGHBOUR_ONLY = frozenset(
    {EnvelopeType.WITHDRAW, EnvelopeType.INVENTORY, EnvelopeType.TABLE} | CONTROL_TYPES
)

#: what handles an envelope that passed rules 1-5: (envelope, the copy to pass on with our
#: hop added, the link's state, the link, now) -> actions
Handler = Callable[[Envelope, Envelope, Neighbour, int, float], list[Action]]


def _from_the_neighbour_itself(envelope: Envelope) -> bool:
    """A neighbour-only envelope, unrelayed (its author is to be the link's peer).

    The link already proves who sent it, and nobody else ever relies on its
    signature, so its check is skipped; the author must still be the peer, or
    it would teach us a path to someone else through that link.
    """
    return envelope.type in NEIGHBOUR_ONLY and envelope.hop_limit == 1 and envelope.hops == 0


class Inbound:
    """Handles the frames that arrive on the links in `links` (shared with the router)."""

    def __init__(
        self,
        me: bytes,
        config: RouterConfig,
        links: dict[int, Neighbour],
        *,
        seen: SeenCache,
        redeliveries: ReplayGuard,
        paths: PathTable,
        forwarding: Forwarder,
        notices: Notices,
        discovery: Discovery,
        admission: Admission,
        offers: Offers,
        gossip: Gossip | None,
        counters: dict[str, int],
        count: Callable[..., None],
    ) -> None:
        self._me = me
        self.config = config
        self.links = links
        self.seen = seen
        self.redeliveries = redeliveries
        self.paths = paths
        self.forwarding = forwarding
        self.notices = notices
        self.discovery = discovery
        self.admission = admission
        self.offers = offers
        self.gossip = gossip
        self.counters = counters
        self._count = count
        #: checks an encoded envelope's signature (a simulator may share verdicts)
        self.check_signature: Callable[[bytes], bool | None] = wire_signature_holds
        #: rule 6: the handler of each neighbour-only or routing type; the others are payloads
        self.handlers: dict[int, Handler] = {
            EnvelopeType.ANNOUNCE: self._on_announce,
            EnvelopeType.WITHDRAW: self._on_withdraw,
            EnvelopeType.TABLE: self._on_table,
            EnvelopeType.INVENTORY: self._on_inventory,
            EnvelopeType.ADDRESS: self._on_address,
            EnvelopeType.SIGNAL: self._on_signal,
            EnvelopeType.HELD: self._on_held,
            EnvelopeType.PATH: self._on_path,
            **{kind: self._on_gossip_control for kind in CONTROL_TYPES},
        }
        self.signals = SignalGate()
        #: room envelopes that came close to their hop limit (see :mod:`mesh.routing.hopmarks`)
        self.hop_marks = HopMarks(config.room_hop_reserve)

    def receive(
        self,
        link: int,
        data: bytes,
        now: float,
        signature_ok: bool | None,
        message_id: bytes | None = None,
    ) -> list[Action]:
        """Rules 1 on, for one frame from `link` (see :meth:`Router.receive`)."""
        state = self.links.get(link)
        if state is None:
            self._count("dropped_unknown_link")
            return []
        self._count("received")
        if not state.bucket.take(now):
            return self._reject(link, "rate_limited", now)
        return self._frame(state, link, data, now, signature_ok, message_id)

    # -- one frame: rules 2 to 6 -------------------------------------------------

    def _frame(
        self,
        state: Neighbour,
        link: int,
        data: bytes,
        now: float,
        signature_ok: bool | None,
        message_id: bytes | None = None,
    ) -> list[Action]:
        """Rules 2 on of the module docstring, for a frame (or TABLE entry) from `link`."""
        # most frames in a busy mesh are duplicates: drop those from the raw bytes
        if message_id is None:  # else hashed from these bytes already (in a worker thread)
            message_id = wire_message_id(data)  # None only for frames decode() refuses
        seen = message_id is not None and self.seen.seen(message_id, now)
        if (
            seen
            and message_id is not None
            and self._plain_duplicate(state, link, data, message_id, now)
        ):
            return []
        try:
            envelope = Envelope.decode(data, message_id)
        except EnvelopeError:
            return self._reject(link, "malformed", now)
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
        if seen:
            return self._seen_again(envelope, data, link, now)
        if signature_ok is None:
            if envelope.author == state.peer and _from_the_neighbour_itself(envelope):
                signature_ok = True  # the link's handshake and box-stream MACs vouch for it
            else:
                signature_ok = bool(self.check_signature(data))
        if not signature_ok:
            return self._reject(link, "bad_signature", now)
        self.seen.add(envelope.message_id, now)
        if envelope.author == self._me:
            return self._reject(link, "own_echo", now)
        relayed = envelope.with_hops(envelope.hops + 1)
        is_announce = envelope.type == EnvelopeType.ANNOUNCE
        announce = relayed.encode() if is_announce else None
        self.paths.learn(envelope.author, link, relayed.hops, now, announce)
        handler = self.handlers.get(envelope.type, self._on_payload)
        return handler(envelope, relayed, state, link, now)

    def _plain_duplicate(
        self, state: Neighbour, link: int, data: bytes, message_id: bytes, now: float
    ) -> bool:
        """For a frame whose id we saw: True (counted) when its raw bytes show nothing to do.

        An announce may still teach a path (when we have none) and one for us of
        a stored type goes up again (see :meth:`_seen_again`): those are decoded.
        """
        kind = wire_type(data)
        if kind == EnvelopeType.ANNOUNCE:
            author = wire_author(data)
            if state.owed:
                state.owed.pop(author, None)  # it has a path: nothing owed to it
            if not self.paths.has_path(author, wire_hops(data), link, now):
                return False
            self.offers.cancel(link, author)  # as in _frame, for one that goes on
        elif wire_to_room(data):
            if self.hop_marks.improves(message_id, wire_hops(data)):
                return False  # a copy over fewer links: it goes on again
            if self.gossip is not None:
                self.gossip.heard(message_id, link)  # no IHAVE of it to that neighbour
        elif kind >= EnvelopeType.DATA and wire_to_peer(data, self._me):
            return False  # one to hand up again
        self._duplicate()
        return True

    def _seen_again(self, envelope: Envelope, data: bytes, link: int, now: float) -> list[Action]:
        """An envelope whose id we saw: a mailbox's redelivery, a path to relearn, or nothing."""
        message_id = envelope.message_id
        if self._stored_for_me(envelope) and self.redeliveries.seen_recently(message_id, now):
            return self._reject(link, "replayed", now)  # before any signature check
        if self._is_redelivery(envelope):
            self.redeliveries.allow(message_id, now)
            return [Deliver(envelope, link)]
        if envelope.dest_kind == DestKind.ROOM:
            return self._room_again(envelope, data, link, now)
        relayed = self.paths.relearn(envelope, data, link, now, self.check_signature)
        actions = [] if relayed is None else self.forwarding.flood(relayed, link, True)
        if not actions:
            self._duplicate()
        return actions

    def _room_again(self, envelope: Envelope, data: bytes, link: int, now: float) -> list[Action]:
        """A room envelope seen before: passed on again if this copy crossed fewer links
        than the one we had, which came close to its hop limit (:mod:`mesh.routing.hopmarks`)."""
        message_id = envelope.message_id
        if not self.hop_marks.improves(message_id, envelope.hops):
            self._duplicate()
            return []
        # the id covers the signed part only: this copy's signature is unchecked yet
        if not self.check_signature(data):
            return self._reject(link, "bad_signature", now)
        relayed = envelope.with_hops(envelope.hops + 1)
        self.hop_marks.note(message_id, relayed.hops, envelope.hop_limit)
        self._count("room_passed_on_again")
        if self.gossip is None:
            return self.forwarding.flood(relayed, link)
        if relayed.hops + 1 > envelope.hop_limit:
            return []
        if self.gossip.config.tree:
            targets = self.paths.tree(envelope.author, link, now)
        else:
            topic = self.gossip.topics.get(envelope.dest)
            targets = sorted(topic.mesh - {link}) if topic is not None else []
        out = relayed.encode()
        return self.notices.gossiped([Forward(target, out) for target in targets], now)

    # -- rule 6: the handlers ------------------------------------------------------

    def _on_announce(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        route = self.paths.routes.get(envelope.author)
        if route is not None:
            # every other neighbour gets this copy and may take its path through us;
            # only their own copies, coming back, say otherwise
            route.near = 0
            self.paths.heard(route, link, envelope.hops)
        return self.forwarding.flood(relayed, link)

    def _on_withdraw(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        """A neighbour lost paths: drop ours through it, and pass the news on."""
        payload = envelope.payload
        if len(payload) % 32 or envelope.hop_limit != 1:
            return self._reject(link, "malformed", now)
        dests = [payload[start : start + 32] for start in range(0, len(payload), 32)]
        actions = self.notices.withdraw(self.paths.withdrawn(dests, link, now), link, now)
        if self.paths.repair.requests:
            actions += self.notices.ask(self.paths.repair.take_requests(), now)
        return actions

    def _on_table(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
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
        self._count("table_entries", len(frames))
        actions: list[Action] = []
        for frame in frames:
            if len(frame) < 3 or wire_type(frame) != EnvelopeType.ANNOUNCE:
                actions += self._reject(link, "malformed", now)
            else:
                actions += self._frame(state, link, frame, now, None)
            if self.links.get(link) is not state or state.peer in self.admission.bans:
                break  # banned by its own entries
        return actions

    def _on_inventory(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        return [Deliver(envelope, link)]  # for this neighbour only; never passed on

    def _on_address(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        # peer exchange: records spread as far as their (small) hop limit allows
        return [Deliver(envelope, link), *self.forwarding.flood(relayed, link)]

    def _on_gossip_control(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        """GRAFT/PRUNE/IHAVE/IWANT from a neighbour: for the topic mesh only, never passed on."""
        if envelope.hop_limit != 1:
            return self._reject(link, "malformed", now)
        if self.gossip is None:
            self._count("dropped_gossip_off")
            return []
        try:
            actions = self.gossip.control(
                link, envelope.type, envelope.payload, lambda m: self.seen.seen(m, now), now
            )
        except EnvelopeError:
            return self._reject(link, "malformed", now)
        return self.notices.gossiped(actions, now)

    def _on_signal(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        """An ephemeral signal: within its author's budget, on as a payload goes, never kept."""
        reason = self.signals.admit(envelope.author, len(envelope.payload), now)
        if reason is None and envelope.dest_kind == DestKind.PEER and envelope.dest != self._me:
            route = self.paths.route_to(envelope.dest, now)
            if route is None or route.link not in self.links:
                reason = "signal_no_path"  # stale by the time a path came: not parked
        if reason is not None:
            self._count(f"dropped_{reason}")
            return []
        return self._on_payload(envelope, relayed, state, link, now)

    def _on_held(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        """A node near a peer that left holds our (or, passing by, someone's) traffic for it:
        FLOOD-flagged copies for that peer follow its path for a while (mesh/routing/repair.py)."""
        if len(envelope.payload) != 32 or envelope.dest_kind != DestKind.PEER:
            return self._reject(link, "malformed", now)
        if self.config.local_departures:
            self.paths.repair.note_held(envelope.payload, now, now + self.config.park_ttl)
        if envelope.dest == self._me:
            self._count("held_heard")
            return []
        return self.forwarding.forward(envelope, link, now)

    def _on_path(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        """A path request (answered here, or passed on) or an answer (learned, and passed on)."""
        done = self.discovery.receive(envelope, relayed, link, now)
        return self._reject(link, done, now) if isinstance(done, str) else done

    def _held(self, envelope: Envelope, now: float) -> list[Action]:
        """Tell the author of a directed envelope parked here for a peer that left (once in a
        while per author and peer): its FLOOD-flagged retries need not flood the mesh."""
        dest, author = envelope.dest, envelope.author
        until = now + self.config.park_ttl / 2
        route = self.paths.route_to(author, now)
        if route is None or not self.paths.repair.tell(author, dest, now, until):
            return []
        held = self.notices.make(
            EnvelopeType.HELD, now, dest_kind=DestKind.PEER, dest=author, payload=dest
        )
        self.seen.add(held.message_id, now)
        self._count("held_sent")
        return self.forwarding.forward(held, None, now)

    def _on_payload(
        self, envelope: Envelope, relayed: Envelope, state: Neighbour, link: int, now: float
    ) -> list[Action]:
        """Any other type: delivered here, kept for the mailbox, and forwarded, as it says."""
        if envelope.dest_kind == DestKind.PEER and envelope.dest == self._me:
            self._count("delivered")
            return [Deliver(envelope, link)]
        actions: list[Action] = []
        if envelope.dest_kind == DestKind.ROOM:
            actions.append(Deliver(envelope, link))
            self.hop_marks.note(envelope.message_id, relayed.hops, envelope.hop_limit)
            if self.gossip is not None:
                # the topic mesh decides where room traffic goes, within the hop limit
                distance = relayed.hops
                out = relayed.encode() if distance + 1 <= envelope.hop_limit else None
                if out is None:
                    self._count("dropped_hop_limit")
                spare = envelope.hop_limit - distance - 1
                tree = (
                    self.paths.tree(envelope.author, link, now) if self.gossip.config.tree else None
                )
                gossiped = self.gossip.receive(
                    envelope.dest, envelope.message_id, out, link, now, spare, tree
                )
                return actions + self.notices.gossiped(gossiped, now)
        elif envelope.type >= EnvelopeType.DATA:
            # store-and-forward: the destination may be offline; keep a copy to hand over
            store = not self._is_neighbour(envelope.dest)
            if store or envelope.type == EnvelopeType.RECEIPT:
                actions.append(Keep(envelope, store))
        actions += self.forwarding.forward(envelope, link, now)
        if (
            envelope.dest_kind == DestKind.PEER
            and envelope.dest in self.paths.repair.departed
            and self.forwarding.lot.waiting(envelope) is not None
        ):
            actions += self._held(envelope, now)
        return actions

    # -- drops ---------------------------------------------------------------

    def _duplicate(self) -> None:
        # _reject(link, "duplicate", now) for the most common drop of all: it costs no points
        counters = self.counters
        counters["dropped_duplicate"] = counters.get("dropped_duplicate", 0) + 1

    def _reject(self, link: int, reason: str, now: float) -> list[Action]:
        """Count a drop; charge the link's peer for it, and close its links if that bans it."""
        self._count(f"dropped_{reason}")
        if self.gossip is not None and reason in ("malformed", "bad_signature"):
            self.gossip.penalise(link)
        state = self.links.get(link)
        if state is None or not self.admission.charge(state.peer, reason, now):
            return []
        peer = state.peer
        return [Close(other, "banned") for other, st in self.links.items() if st.peer == peer]

    def _is_neighbour(self, peer: bytes) -> bool:
        return any(state.peer == peer for state in self.links.values())

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
        self._count("redelivered")
        return True

    def _stored_for_me(self, envelope: Envelope) -> bool:
        return (
            envelope.type >= EnvelopeType.DATA
            and envelope.dest_kind == DestKind.PEER
            and envelope.dest == self._me
        )
