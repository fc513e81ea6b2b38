"""What a node signs for the mesh itself: announces, withdrawals, tables, topic-mesh control.

Every envelope the router makes (as opposed to those the layers above hand
it) is built here, with the node's in-memory sequence number. Sans-I/O,
owned by :class:`~mesh.routing.router.Router`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mesh.routing.actions import Action, Send
from mesh.routing.config import RouterConfig
from mesh.routing.gossip import Control, GossipAction
from mesh.routing.paths import Neighbour
from mesh.routing.reshare import Offers
from mesh.routing.seen import SeenCache
from mesh.routing.tables import pack_table
from mesh.wire.envelope import MAX_HOPS, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity

#: destinations named in one withdrawal notice at most (32 bytes each)
MAX_WITHDRAW = 2048


class Notices:
    """Signs this node's envelopes; notices to neighbours go on the links in `links`."""

    def __init__(
        self,
        identity: Identity,
        config: RouterConfig,
        links: dict[int, Neighbour],
        seen: SeenCache,
        offers: Offers,
        count: Callable[[str, int], None],
    ) -> None:
        self.identity = identity
        self.config = config
        self.links = links
        self.seen = seen
        self.offers = offers
        self._count = count
        self.seq = 0  # the last sequence number taken
        self.last_announce: Envelope | None = None
        #: with an announce radius, whether our announces cross the whole mesh anyway: a
        #: room member's do, so that every relay knows its distance to the member and room
        #: envelopes go down its tree (Router.announce_widely)
        self.wide = False

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
        """Sign a new envelope from this node (see :meth:`Router.make`)."""
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

    def announce(self, now: float) -> Envelope:
        """A fresh announce: "I am here"."""
        # with an announce radius it goes no farther (mesh/routing/discovery.py)
        radius = self.config.announce_radius
        hop_limit = min(radius, MAX_HOPS) if radius and not self.wide else MAX_HOPS
        self.last_announce = self.make(EnvelopeType.ANNOUNCE, now, hop_limit=hop_limit)
        return self.last_announce

    def link_up_announce(self, now: float) -> Envelope:
        """Our announce for a new neighbour: a recent one again, when there is one.

        A fresh announce floods the whole mesh; the last one (until the next
        periodic one replaces it) is news only where it has not been — the new
        neighbour, or a partition the new link joins — so a node coming back
        with many links, and each of its neighbours, costs the mesh at most one
        flood, not one per link. Receivers time a path from when they get it.
        """
        last = self.last_announce
        if last is not None and now - last.timestamp_ms / 1000 < self.config.announce_interval:
            return last
        return self.announce(now)

    def withdraw(self, dests: list[bytes], came_from: int | None, now: float) -> list[Action]:
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
                    self._count("withdrawals_spared", len(dests) - len(told))
        else:
            groups[tuple(dests)] = targets
        actions: list[Action] = []
        for told, links in groups.items():
            actions += self._withdrawals(told, links, now)
        if groups:
            self._count("withdrawals_sent", 1)
        return actions

    def ask(self, requests: dict[int, list[bytes]], now: float) -> list[Action]:
        """Ask each link's neighbour for paths to the destinations listed for it: a WITHDRAW
        of them, to that neighbour alone (:mod:`mesh.routing.repair`)."""
        actions: list[Action] = []
        for link, dests in requests.items():
            if link in self.links:
                actions += self._withdrawals(dests, [link], now)
        if actions:
            self._count("repair_requests_sent", len(actions))
        return actions

    def _withdrawals(self, dests: Sequence[bytes], links: list[int], now: float) -> list[Action]:
        """WITHDRAW notices of `dests` (as many as they need) on each of `links`."""
        actions: list[Action] = []
        for start in range(0, len(dests), MAX_WITHDRAW):
            payload = b"".join(dests[start : start + MAX_WITHDRAW])
            notice = self.make(EnvelopeType.WITHDRAW, now, payload=payload, hop_limit=1)
            self.seen.add(notice.message_id, now)
            data = notice.encode()
            actions += [Send(link, data) for link in links]
        return actions

    def table(self, link: int, frames: list[bytes], now: float) -> list[Action]:
        """Send stored announces to one neighbour as TABLE envelopes (signed once per frame)."""
        if not frames:
            return []
        self._count("table_entries_sent", len(frames))
        return [
            Send(link, self.make(EnvelopeType.TABLE, now, payload=part, hop_limit=1).encode())
            for part in pack_table(frames)
        ]

    def gossiped(self, actions: list[GossipAction], now: float) -> list[Action]:
        """Turn the topic mesh's actions into sends, signing its control envelopes."""
        out: list[Action] = []
        for action in actions:
            if action.link not in self.links:
                continue
            if isinstance(action, Control):
                notice = self.make(action.type, now, payload=action.payload, hop_limit=1)
                self.seen.add(notice.message_id, now)
                self._count("gossip_control_sent", 1)
                out.append(Send(action.link, notice.encode()))
            else:
                self._count("gossip_forwarded", 1)
                out.append(Send(action.link, action.data))
        return out
