"""Paths found when needed: PATH requests and their answers (``RouterConfig.announce_radius``).

With an announce radius R, announces cross at most R links: a node keeps paths
to the nodes within R of it (its neighbourhood, kept up by their announces)
and to those it heard from (reverse paths), and finds any other when traffic
needs one. A directed envelope with no path is parked
(:mod:`mesh.routing.parking`) and a PATH request for its destination goes out:

1. in rings first: hop limit R + 1, then 2R + 1, each answered by any node
   the destination's own announce reached (a path holding it: at most R
   links), so a ring of hop limit h covers destinations up to h + R links
   away; a node that answers does not pass the request on. A ring waits
   ``RING_WAIT`` per link of its hop limit for an answer;
2. then across the mesh (hop limit MAX_HOPS), and again after each of
   ``WAITS`` while something still waits for the destination: one that is
   away answers once it is back.

The destination itself always answers. An answer is a PATH envelope from the
answering node to the asker, carrying the destination's signed announce with
the answerer's distance as its hop count. It follows the path back to the
asker, which the request taught every node it reached (the reverse path);
each node it passes checks the announce's signature and learns the
destination through the link the answer came on, at the answerer's distance
plus the links the answer crossed. Then parked traffic goes
(:meth:`mesh.routing.forwarding.Forwarder.release`).

A leave or a return costs only what its announces and withdrawals reach: the
nodes within R, and those that asked for a path through it. The cost moves to
traffic: a request that reaches the whole mesh costs a flood of it, once per
destination in use (docs/scale.md measures both).

Payload: ``b"\\x00"`` for a request; ``b"\\x01"`` and the encoded announce for an
answer. Counters: ``path_requests_sent`` (``path_rings_sent`` of them rings),
``path_requests_answered`` (here, as the destination or for it), ``paths_found``
(answers that reached their asker), ``path_requests_full``, ``dropped_path_too_long``
(an answer whose path is longer than MAX_HOPS links here: no envelope could follow it).
Sans-I/O, owned by :class:`~mesh.routing.router.Router`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mesh.errors import EnvelopeError
from mesh.routing.actions import Action
from mesh.routing.config import RouterConfig
from mesh.routing.forwarding import Forwarder
from mesh.routing.notices import Notices
from mesh.routing.parking import ParkingLot
from mesh.routing.paths import NEVER, PathTable, Route
from mesh.routing.seen import SeenCache
from mesh.wire.envelope import MAX_HOPS, DestKind, Envelope, EnvelopeType

REQUEST = b"\x00"
ANSWER = b"\x01"
RING_WAIT = 0.2  # seconds per link of a ring's hop limit to wait for an answer (there and back)
WAITS = (2.0, 4.0, 8.0, 16.0)  # then between requests to the whole mesh (the last repeats)
#: seconds within which paths learned from answers count as from the same asking
ANSWER_WINDOW = 2.0


@dataclass(slots=True)
class Want:
    """A destination something waits for: requests made, and when the next one is due."""

    tries: int
    next_at: float


class Discovery:
    """PATH requests made for parked traffic, and PATH envelopes handled (see module docstring)."""

    def __init__(
        self,
        me: bytes,
        config: RouterConfig,
        paths: PathTable,
        lot: ParkingLot,
        seen: SeenCache,
        notices: Notices,
        forwarding: Forwarder,
        check_signature: Callable[[bytes], bool | None],
        count: Callable[..., None],
    ) -> None:
        self._me = me
        self.config = config
        radius = config.announce_radius
        #: hop limits of the rings asked before the whole mesh
        self.rings = tuple(
            sorted({min(h, MAX_HOPS) for h in (radius + 1, 2 * radius + 1)} - {MAX_HOPS})
        )
        self.paths = paths
        self.lot = lot
        self.seen = seen
        self.notices = notices
        self.forwarding = forwarding
        self.check_signature = check_signature
        self._count = count
        self.wants: dict[bytes, Want] = {}  # destinations asked for, while traffic waits
        self.next_check = NEVER

    # -- asking ----------------------------------------------------------------------

    def seek(self, dest: bytes, now: float) -> list[Action]:
        """Traffic for `dest` was parked here: ask for a path, unless a request is under way."""
        want = self.wants.get(dest)
        if want is not None:
            return self._ask(dest, want, now) if want.next_at <= now else []
        if len(self.wants) >= self.config.max_parked:
            self._count("path_requests_full")  # what waits expires, as with no path at all
            return []
        want = self.wants[dest] = Want(0, now)
        return self._ask(dest, want, now)

    def _ask(self, dest: bytes, want: Want, now: float) -> list[Action]:
        rings = self.rings
        if want.tries < len(rings):
            hop_limit = rings[want.tries]
            wait = RING_WAIT * hop_limit
            self._count("path_rings_sent")
        else:
            hop_limit = MAX_HOPS
            wait = WAITS[min(want.tries - len(rings), len(WAITS) - 1)]
        want.tries += 1
        want.next_at = now + wait
        self.next_check = min(self.next_check, want.next_at)
        request = self.notices.make(
            EnvelopeType.PATH,
            now,
            dest_kind=DestKind.PEER,
            dest=dest,
            payload=REQUEST,
            hop_limit=hop_limit,
        )
        self.seen.add(request.message_id, now)
        self._count("path_requests_sent")
        return self.forwarding.flood(request, None)

    def tick(self, now: float) -> list[Action]:
        """Ask again for destinations still without a path that traffic still waits for."""
        if now < self.next_check:
            return []
        self.next_check = NEVER
        actions: list[Action] = []
        for dest, want in list(self.wants.items()):
            if dest not in self.lot.parked or self.paths.route_to(dest, now) is not None:
                del self.wants[dest]  # it went, or expired: nothing to ask for
            elif want.next_at <= now:
                actions += self._ask(dest, want, now)
            else:
                self.next_check = min(self.next_check, want.next_at)
        return actions

    # -- PATH envelopes ----------------------------------------------------------------

    def receive(
        self, envelope: Envelope, relayed: Envelope, link: int, now: float
    ) -> list[Action] | str:
        """A PATH envelope (its author's path already learned): the actions, or a drop's reason."""
        if envelope.dest_kind != DestKind.PEER:
            return "malformed"
        if envelope.payload == REQUEST:
            return self._request(envelope, relayed, link, now)
        if envelope.payload[:1] == ANSWER:
            return self._answer(envelope, relayed, link, now)
        return "malformed"

    def _request(
        self, envelope: Envelope, relayed: Envelope, link: int, now: float
    ) -> list[Action]:
        target = envelope.dest
        if target == self._me:
            stored = self.notices.link_up_announce(now).encode()
        else:
            route = self.paths.route_to(target, now)
            if not self._answers_for(route, link):
                return self.forwarding.flood(relayed, link)
            assert route is not None and route.announce is not None
            stored = route.announce
        self._count("path_requests_answered")
        answer = self.notices.make(
            EnvelopeType.PATH,
            now,
            dest_kind=DestKind.PEER,
            dest=envelope.author,
            payload=ANSWER + stored,
        )
        self.seen.add(answer.message_id, now)
        return self.forwarding.forward(answer, None, now)

    def _answers_for(self, route: Route | None, link: int) -> bool:
        """Whether our path answers a request that came on `link`.

        It must come from the target's own announce, not lead back where the
        request came from, and lie within our radius: only such paths are
        withdrawn as soon as they break (a room member's announce crosses the
        mesh, but farther out a break is not told, and a kept path may run
        through the asker).
        """
        if route is None or route.announce is None or route.link == link:
            return False
        radius = self.config.announce_radius
        return not radius or route.hops <= radius

    def _answer(
        self, envelope: Envelope, relayed: Envelope, link: int, now: float
    ) -> list[Action] | str:
        inner = envelope.payload[1:]
        try:
            announce = Envelope.decode(inner)
        except EnvelopeError:
            return "malformed"
        if announce.type != EnvelopeType.ANNOUNCE or announce.dest_kind != DestKind.NONE:
            return "malformed"
        age = now - announce.timestamp_ms / 1000.0
        if age > self.config.max_age:
            return "stale"
        if age < -self.config.max_future:
            return "future"
        if not self.check_signature(inner):
            return "bad_signature"
        # the answerer's distance to the target, and the links the answer crossed to here
        hops = announce.hops + relayed.hops
        if hops > MAX_HOPS:
            # no envelope may cross that many links: the answer came the long way (each node
            # sent it back where the request's fastest copy came from); a shorter answer may
            # follow, and until one does the traffic waits and the asking goes on
            return "path_too_long"
        target = announce.author
        kept = self.paths.routes.get(target)
        if (
            kept is not None
            and kept.link != link
            and kept.hops > self.config.announce_radius > 0
            and kept.expires - self.config.route_ttl < now - ANSWER_WINDOW
        ):
            # a path beyond our radius may have broken farther on without a word: the
            # answer is newer, even if longer (a kept path may run through the asker). Not
            # so a path learned just now, from another answer to the same asking: of those
            # the shorter stays (a longer one taken last sent a message 9 links at 20,000
            # nodes, one more than its hop limit allows)
            self.paths.forget(target)
        self.paths.learn(target, link, hops, now, None)
        if envelope.dest == self._me:
            self._count("paths_found")
            self.wants.pop(target, None)
            return []
        return self.forwarding.forward(envelope, link, now)
