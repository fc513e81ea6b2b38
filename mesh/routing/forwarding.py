"""Forwarding: where an envelope goes on from here — along its path, parked, or flooded.

A directed envelope follows the known path to its destination. One whose
path was *lost* (withdrawn, or its link went down) is not flooded: it is
parked, and sent along the next path learned for its destination, or dropped
after ``park_ttl`` (:mod:`mesh.routing.parking`). A relay floods a
FLOOD-flagged envelope without a path at once; its author parks it too, and
floods it only if no path came by then. Everything else floods, within its
hop limit. Sans-I/O, owned by :class:`~mesh.routing.router.Router`.
"""

from __future__ import annotations

from collections.abc import Callable

from mesh.routing.actions import Action, Send
from mesh.routing.parking import ParkingLot
from mesh.routing.paths import Neighbour, PathTable, Route
from mesh.routing.reshare import Offers
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType


class Forwarder:
    """Turns envelopes into sends on the links in `links` (shared with the router)."""

    def __init__(
        self,
        links: dict[int, Neighbour],
        paths: PathTable,
        lot: ParkingLot,
        offers: Offers,
        count: Callable[[str], None],
    ) -> None:
        self.links = links
        self.paths = paths
        self.lot = lot
        self.offers = offers
        self._count = count
        #: with an announce radius: asks for a path to a destination whose traffic was
        #: parked here (:meth:`mesh.routing.discovery.Discovery.seek`)
        self.seek: Callable[[bytes, float], list[Action]] | None = None

    def forward(self, envelope: Envelope, came_from: int | None, now: float) -> list[Action]:
        """Send `envelope` (ours when `came_from` is None) on towards its destination."""
        # hops counts links already crossed; one more must stay within the limit
        next_hops = envelope.hops + (0 if came_from is None else 1)
        if next_hops + 1 > envelope.hop_limit:
            self._count("dropped_hop_limit")
            return []
        out = envelope if came_from is None else envelope.with_hops(next_hops)
        if envelope.dest_kind == DestKind.PEER:
            route = self.paths.route_to(envelope.dest, now)
            if self.seek is not None:
                return self._on_demand(envelope, out, route, came_from, now)
            if route is None or route.link not in self.links:
                # a relay still floods what its author flagged FLOOD (a path may lie); its
                # author waits for a path first, and floods it only if none comes in time
                origin = came_from is None
                # a node that left waits in its neighbourhood: paths farther out were kept,
                # so a relay there holds even a FLOOD-flagged copy, as its author would
                holds = origin or self.paths.repair.holds(envelope.dest)
                may_park = holds or not envelope.flood
                if may_park and self.lot.is_lost(envelope.dest, now):
                    # the author may be gone before a path comes back: the first time, the
                    # neighbour longest linked gets a copy too, which its mailbox keeps
                    handoff = (
                        origin
                        and envelope.type >= EnvelopeType.DATA
                        and bool(self.links)
                        and self.lot.waiting(out) is None
                    )
                    if self.lot.park(out, now, last_resort=holds and envelope.flood):
                        if not handoff:
                            return []
                        self._count("parked_handed_to_a_neighbour")
                        return [Send(next(iter(self.links)), out.encode())]
            elif route.link != came_from and (
                not envelope.flood or self.paths.repair.is_held(envelope.dest, now)
            ):
                # a FLOOD-flagged copy for a peer that left goes the way of the first,
                # to the node near it that holds them (a HELD notice said so)
                self._count("relayed" if came_from is not None else "sent_direct")
                return [Send(route.link, out.encode())]
        return self.flood(out, came_from)

    def _on_demand(
        self,
        envelope: Envelope,
        out: Envelope,
        route: Route | None,
        came_from: int | None,
        now: float,
    ) -> list[Action]:
        """With an announce radius: along the path, or parked while one is asked for.

        Nothing directed floods (a flood would cost the whole mesh): FLOOD only
        makes its author ask again for a path it found on demand, which may lie.
        """
        assert self.seek is not None
        if route is not None and came_from is None and envelope.flood and route.announce is None:
            self.paths.forget(envelope.dest)
            self._count("path_asked_again")
            route = None
        if route is not None and route.link in self.links and route.link != came_from:
            self._count("relayed" if came_from is not None else "sent_direct")
            return [Send(route.link, out.encode())]
        if not self.lot.park(out, now):
            return self.flood(out, came_from)  # the lot is full
        return self.seek(envelope.dest, now)

    def flood(
        self, envelope: Envelope, came_from: int | None, settled_only: bool = False
    ) -> list[Action]:
        """Send on every link but `came_from` (and, if `settled_only`, but young links)."""
        if came_from is not None and envelope.hops + 1 > envelope.hop_limit:
            self._count("dropped_hop_limit")
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
            self._count("flooded")
            if announce_of is not None and len(self.offers):
                for link in targets:
                    self.offers.cancel(link, announce_of)  # they have it from us now
        return [Send(link, data) for link in targets]

    def release(self, now: float) -> list[Action]:
        """Send parked envelopes whose destination has a path again."""

        def path(dest: bytes) -> int | None:
            route = self.paths.route_to(dest, now)
            return route.link if route is not None and route.link in self.links else None

        actions: list[Action] = [Send(link, d) for link, d in self.lot.release(path, now)]
        return actions + self.last_resorts() if self.lot.due_floods else actions

    def last_resorts(self) -> list[Action]:
        """Flood our own FLOOD-flagged retries whose wait for a path ran out."""
        actions: list[Action] = []
        for envelope in self.lot.due_floods:
            actions += self.flood(envelope, None)
        self.lot.due_floods.clear()
        return actions
