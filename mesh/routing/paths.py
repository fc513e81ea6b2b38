"""The path table and its repair: how to reach each destination, and what to do when a path breaks.

Paths are learned from the link each announce (or any envelope: the reverse
path) came on. Fallbacks: an announce copy that comes through another link at
the distance of our path makes that link the path's fallback (a feasible
successor: that neighbour is nearer the destination than we are). A path
whose link goes down or withdraws it moves to its fallback silently; only
paths without one are withdrawn, which keeps most of a leaving node's
transit paths out of repair.

Route repair: when a neighbour withdraws a destination we still reach another
way, we offer it our stored announce for it (:mod:`mesh.routing.reshare`). A
relearned path goes at once only on links older than ``link_settle``; a
younger one is owed it and gets what it is still owed in one TABLE when it
settles. With ``RouterConfig.local_departures`` a departure and a broken transit
path are repaired near the break instead (:mod:`mesh.routing.repair`).
Sans-I/O, owned by :class:`~mesh.routing.router.Router`, which turns what this
module answers into sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mesh.routing.config import RouterConfig
from mesh.routing.parking import ParkingLot
from mesh.routing.ratelimit import TokenBucket
from mesh.routing.repair import LocalRepair
from mesh.routing.reshare import Offers
from mesh.wire.envelope import Envelope, EnvelopeType, wire_may_cross_a_link, wire_same_but_hops

NEVER = float("inf")


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
    # links (as Neighbour.bit) whose neighbour passed us an announce of dest from no farther
    # than we are: it has a path of its own, not through us (room trees skip it)
    near: int = 0


@dataclass(slots=True)
class Neighbour:
    """What the router keeps about one link: its peer, its token bucket, its age."""

    peer: bytes
    bucket: TokenBucket
    since: float = 0.0  # when it came up
    bit: int = 0  # this link's bit in Route.near (a slot free while it lives)
    # while the link is younger than link_settle: destinations whose path we relearned
    # and its peer has not passed us since (sent in one TABLE when the link settles)
    owed: dict[bytes, None] | None = None  # (a dict: in order, so runs repeat exactly)


class PathTable:
    """Paths to every known destination, through the links in `links` (shared with the router).

    `lot` hears of paths found and lost (parked traffic waits for them);
    `offers` holds the re-shares promised to neighbours that withdrew a path.
    """

    def __init__(
        self,
        me: bytes,
        config: RouterConfig,
        links: dict[int, Neighbour],
        lot: ParkingLot,
        offers: Offers,
        count: Callable[..., None],
        now: float,
    ) -> None:
        self._me = me
        self.config = config
        self.links = links
        self.lot = lot
        self.offers = offers
        self._count = count
        self.routes: dict[bytes, Route] = {}
        self.local = config.local_departures
        self.repair = LocalRepair(2 * config.reshare_delay + 1.0, config.max_routes, count)
        self._route_check = now  # no path expires before this
        self.next_settle = NEVER  # when the youngest unsettled link settles

    # -- the table ---------------------------------------------------------------

    def route_to(self, dest: bytes, now: float) -> Route | None:
        route = self.routes.get(dest)
        return route if route is not None and route.expires > now else None

    def learn(self, dest: bytes, link: int, hops: int, now: float, announce: bytes | None) -> None:
        """`dest` is `hops` links away through `link` (`announce`: its announce, to pass on)."""
        if dest == self._me or link not in self.links:
            return
        next_hop = self.links[link].peer
        if dest != next_hop:
            # the hop count is unsigned: a relay must not pass off another peer as its
            # neighbour, whose path would never expire
            hops = max(hops, 2)
        expires = NEVER if hops == 1 else now + self.config.route_ttl
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
            if victim.expires == NEVER:
                self._count("dropped_route_table_full")
                return
            del self.routes[victim.dest]
            self._count("routes_evicted")
        if current is not None and current.link == link and current.hops == hops:
            current.expires = expires  # the same path, refreshed: fallback and near still hold
            if announce is not None:
                current.announce = announce
        else:
            keep = announce if announce is not None else (current.announce if current else None)
            self.routes[dest] = Route(dest, link, next_hop, hops, expires, keep)
        self.lot.found(dest)
        if self.repair:
            self.repair.found(dest)

    def forget(self, dest: bytes) -> None:
        """Drop the path to `dest` (its author's traffic will ask for a new one)."""
        self.routes.pop(dest, None)

    def heard(self, route: Route, link: int, their_hops: int) -> None:
        """The neighbour on `link` passed us an announce of route.dest from `their_hops` away."""
        state = self.links.get(link)
        if state is None:
            return
        if their_hops <= route.hops:
            route.near |= state.bit
        else:
            route.near &= ~state.bit

    def has_path(self, author: bytes, hops: int, link: int, now: float) -> bool:
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
        self.heard(route, link, hops)
        return True

    def expire(self, now: float) -> None:
        """Drop the paths that ran out."""
        if now >= self._route_check:
            # a scan of the whole table only when some path may have run out: new paths
            # expire later than every path already there, so the minimum stays a bound
            for dest in [d for d, r in self.routes.items() if r.expires <= now]:
                del self.routes[dest]
            self._route_check = min((r.expires for r in self.routes.values()), default=NEVER)

    # -- room trees --------------------------------------------------------------

    def tree(self, author: bytes, came_from: int, now: float) -> list[int]:
        """Where `author`'s room envelope goes on from here: to neighbours not nearer to it.

        Each node hears an announce from every neighbour but the ones that took
        their path through it, so the links left are those of the author's
        reverse shortest-path tree (and of neighbours farther away on another
        branch); with no path known, or in a mesh smaller than
        ``GossipConfig.tree_from``, every link.
        """
        route = self.route_to(author, now)
        skip = 0 if route is None or self.small_mesh() else route.near
        return [k for k, st in self.links.items() if k != came_from and not st.bit & skip]

    def small_mesh(self) -> bool:
        """Fewer known destinations than GossipConfig.tree_from: the tree is every link."""
        return len(self.routes) < self.config.gossip.tree_from

    # -- breaks ------------------------------------------------------------------

    def switch(self, route: Route) -> bool:
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
        self._count("routes_switched")
        return True

    def link_gone(self, link: int, gone: Neighbour, now: float) -> list[bytes]:
        """`link` (to `gone.peer`, already out of `links`) closed: the destinations lost."""
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
        broken = [r for r in broken if not self.switch(r)]
        for route in broken:
            del self.routes[route.dest]
        # another link to the same neighbour keeps it reachable
        for other, state in self.links.items():
            if state.peer == gone.peer:
                self.learn(gone.peer, other, 1, now, None)
        broken = self._told([r for r in broken if r.dest not in self.routes])
        self.mark_lost(broken, now)
        if self.local and broken:
            broken = self._ask_around(broken, now)
        dests = [r.dest for r in broken]
        if self.local:
            dests += [d for d in self.repair.cut_off(link) if d not in self.routes]
        return dests

    def withdrawn(self, dests: list[bytes], link: int, now: float) -> list[bytes]:
        """The neighbour on `link` lost its paths to `dests`: the destinations we lost with it.

        Where we reach one another way, we offer that neighbour our path back.
        """
        lost: list[Route] = []
        bit = self.links[link].bit
        due = self.offers.draw(now) if self.local else None  # one TABLE of offers back
        for dest in dests:
            route = self.routes.get(dest)
            if route is None:
                continue
            route.near &= ~bit  # it lost its path: it may take ours
            if route.link == link:
                if route.hops > 1 and not self.switch(route):
                    del self.routes[dest]
                    lost.append(route)
            else:
                if route.alt == link:
                    route.alt = None  # that neighbour lost it: no fallback any more
                if route.announce is not None and route.expires > now:
                    self._offer(link, dest, now, due)  # we reach it another way: offer it back
        lost = self._told(lost)
        self.mark_lost(lost, now)
        if self.local and lost:
            lost = self._ask_around(self._keep_departures_local(lost, link), now)
        return [r.dest for r in lost]

    def _told(self, lost: list[Route]) -> list[Route]:
        """Of paths lost, those whose loss neighbours hear of: with an announce radius R, the
        paths a neighbour may have from us, those the destination's own announce gave us
        less than R links from it (ours passed it on); a path found on demand or learned
        from traffic goes quietly, and traffic that still comes for it waits here while a
        new one is asked for (mesh/routing/discovery.py)."""
        radius = self.config.announce_radius
        if not radius:
            return lost
        told = [r for r in lost if r.announce is not None and r.hops < radius]
        if len(told) < len(lost):
            self._count("paths_dropped_quietly", len(lost) - len(told))
        return told

    def came_back(self, peer: bytes, link: int) -> None:
        """`peer` is our neighbour again, on `link`: its next announce is news.

        A path to it learned meanwhile through another neighbour was passed on
        at that distance, too far for the nodes that withdrew it to take back
        (see "Departures"); its announce on the new link goes on again at ours.
        """
        route = self.routes.get(peer)
        if route is not None and route.link == link and route.hops == 1:
            route.announce = None

    def _keep_departures_local(self, lost: list[Route], link: int) -> list[Route]:
        """Of the paths a withdrawal cost us, those to pass on: not the departed ones."""
        kept = 0
        for route in lost:
            if route.hops == 2:  # our neighbour lost its own link to it
                self.repair.depart(route.dest, route.hops, link)
                kept += 1
        if not kept:
            return lost
        self._count("withdrawals_kept_local", kept)
        return [r for r in lost if r.hops != 2]

    def _ask_around(self, lost: list[Route], now: float) -> list[Route]:
        """Of paths lost without a fallback, those to withdraw as before: the others are
        asked of the neighbours no farther from their destination than we were."""
        plain: list[Route] = []
        asked = 0
        for route in lost:
            near = route.near
            links = [k for k, st in self.links.items() if near & st.bit] if near else []
            if links and route.hops > 1:
                self.repair.ask(route.dest, route.hops, links, now)
                asked += 1
            else:
                plain.append(route)
        if asked:
            self._count("repairs_asked", asked)
        return plain

    def mark_lost(self, routes: list[Route], now: float) -> None:
        """Remember that these paths broke: traffic for them waits for a new path."""
        self.lot.mark_lost([(r.dest, r.announce) for r in routes], now + self.config.route_ttl)

    # -- repair --------------------------------------------------------------------

    def _offer(self, link: int, dest: bytes, now: float, due: float | None = None) -> None:
        """Re-share our path to `dest` on `link` after a wait (see :mod:`mesh.routing.reshare`)."""
        if not self.offers.offer(link, dest, now, due):
            self._count("dropped_reshare_full")

    def due_reshares(self, now: float) -> list[tuple[int, bytes]]:
        """The re-shares due, as (link, stored announce), if the path still holds and the
        announce may cross one more link."""
        out: list[tuple[int, bytes]] = []
        for link, dest in self.offers.due(now):
            route = self.route_to(dest, now)
            if link not in self.links or route is None or route.link == link:
                continue
            stored = route.announce
            if stored is not None and wire_may_cross_a_link(stored):
                self._count("reshared")
                route.near &= ~self.links[link].bit  # it may take this path through us
                out.append((link, stored))
        return out

    def table_for(self, link: int, now: float) -> list[bytes]:
        """The stored announces to send a new neighbour on `link` (our path table)."""
        # each stored copy carries our distance as its hop count: passed on only if it
        # may cross one more link
        return [
            stored
            for route in self.routes.values()
            if (stored := route.announce) is not None
            and route.link != link
            and route.expires > now
            and wire_may_cross_a_link(stored)
        ]

    def link_added(self, now: float) -> None:
        """A link came up at `now`: it settles link_settle later."""
        self.next_settle = min(self.next_settle, now + self.config.link_settle)

    def settle(self, now: float) -> list[tuple[int, list[bytes]]]:
        """Links up for link_settle: for each, the paths we relearned since it came up and
        its peer has not passed us (it lacks them; see :meth:`relearn`), as announces."""
        tables: list[tuple[int, list[bytes]]] = []
        settle = self.config.link_settle
        self.next_settle = NEVER
        for link, state in self.links.items():
            owed = state.owed
            if owed is None:
                continue
            if state.since + settle > now:
                self.next_settle = min(self.next_settle, state.since + settle)
                continue
            state.owed = None
            table = []
            for dest in owed:
                route = self.route_to(dest, now)
                if route is None or route.link == link:
                    continue
                stored = route.announce
                if stored is not None and wire_may_cross_a_link(stored):
                    route.near &= ~state.bit  # it may take this path through us
                    table.append(stored)
            tables.append((link, table))
        return tables

    def relearn(
        self,
        envelope: Envelope,
        data: bytes,
        link: int,
        now: float,
        check_signature: Callable[[bytes], bool | None],
    ) -> Envelope | None:
        """Take a path from an announce seen before, if we have lost every path to its author;
        the copy to flood on to settled links, or None.

        After a withdrawal, neighbours re-share announces we saw already; without
        this the path would stay unknown until the author's next announce. It
        floods on only when it created a path (or stored the first announce of a
        neighbour on a new link), which ends the spread where paths survived.
        """
        author = envelope.author
        if envelope.type != EnvelopeType.ANNOUNCE or self.has_path(
            author, envelope.hops, link, now
        ):
            return None
        lost = self.lot.lost.get(author)
        # the id covers the signed part only: this copy's signature, which we would store
        # and pass on, is unchecked yet (a bad one is just a duplicate), unless these are
        # the very bytes of the path we lost (but for the unsigned hop count), checked then
        if (lost is None or lost[1] is None or not wire_same_but_hops(lost[1], data)) and not (
            check_signature(data)
        ):
            return None
        # a repair's rule holds while the path counts as lost (route_ttl): then any path will do
        repairing = self.repair and lost is not None and lost[0] > now
        feasible = self.repair.feasible(author, envelope.hops) if repairing else None
        if feasible is False:
            self._count("relearn_infeasible")  # farther than we were: maybe through us
            return None
        relayed = envelope.with_hops(envelope.hops + 1)
        self.learn(author, link, relayed.hops, now, relayed.encode())
        route = self.route_to(author, now)
        if route is None or route.announce is None:
            return None
        self._count("routes_relearned")
        if feasible:
            self._count("repaired_locally")
            return None  # beyond us paths were kept: nobody lacks it
        if 0 < self.config.announce_radius <= route.hops:
            return None  # its loss went untold (see _told): nobody lacks it
        # it goes on to every other neighbour, which may take its path through us (those
        # with paths of their own drop it, which cancels the re-share they had in mind)
        route.near = 0
        self.heard(route, link, envelope.hops)
        # links that came up lately get it only if their peer does not send it to us first:
        # on link-up each side sends its table, and a node coming back would otherwise
        # echo each table it gets to every other new neighbour
        for other, state in self.links.items():
            if other != link and state.owed is not None:
                state.owed[author] = None
        return relayed
