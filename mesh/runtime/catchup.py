"""Room-log catch-up, sans-I/O: what a node keeps, when it sends its inventory, what answers one.

Every room envelope of a stored type that a node sends or delivers goes into
its room log (mesh/storage/roomlog.py). When a link comes up, each end sends
the other an INVENTORY (its per-author sequence vectors for the rooms it
belongs to, neighbour-only), paced by :class:`~mesh.routing.pacer.InventoryPacer`
so that a node back on many links gets its backlog once; each answers the
other's inventory with the kept envelopes it lacks, each handed on one more
link (:func:`handed_on`). A node that belongs to a room also sends its
inventory to one neighbour every REFRESH_EVERY seconds, the one it swapped with
longest ago (:meth:`CatchUp.refresh`): a room envelope that missed it while its
links stayed up (a copy that ran out of hops on the way, a tree cut by churn)
comes from a neighbour's log then, not only at its next link-up.

:class:`CatchUp` makes these decisions and reads the log; the caller passes the
time in and does the sending: the node streams answers within each link's
budget (mesh/runtime/streams.py), the simulator (sim/catchup.py) sends them at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import msgpack

from mesh.errors import StorageError
from mesh.routing.pacer import InventoryPacer
from mesh.routing.router import Action, Router
from mesh.storage.roomlog import RoomLog, Sent
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType, wire_one_hop_on

log = logging.getLogger("meshnotes.node")

Rooms = Callable[[], Iterable[bytes]]

WIDEN_EVERY = 10.0  # seconds between looks at whether this node belongs to a room
REFRESH_EVERY = 30.0  # seconds between a room member's routine inventories, one link each


def kept_in_room_log(envelope: Envelope) -> bool:
    """A room-addressed envelope of a stored type (DATA and up; not the mesh's own)."""
    return envelope.dest_kind == DestKind.ROOM and envelope.type >= EnvelopeType.DATA


def handed_on(data: bytes) -> bytes:
    """A kept envelope (encoded) handed straight to a neighbour: one more link, within its
    hop limit."""
    return wire_one_hop_on(data)


class CatchUp:
    """One node's catch-up: its room log, the rooms it asks for, and its inventory pacing."""

    def __init__(self, router: Router, roomlog: RoomLog | None, rooms: Rooms = tuple) -> None:
        self.router = router
        self.roomlog = roomlog
        #: the rooms this node belongs to: named in its inventories
        self.rooms = rooms
        self.pacer = InventoryPacer()
        self._next_widen = 0.0
        self._next_refresh = 0.0
        self._swapped: dict[int, float] = {}  # link -> when it last got our inventory

    def widen(self, now: float) -> list[Action]:
        """With an announce radius, a member of a room announces across the mesh, so that
        its rooms' trees reach it (Router.announce_widely); asked every WIDEN_EVERY s."""
        if not self.router.config.announce_radius or now < self._next_widen:
            return []
        self._next_widen = now + WIDEN_EVERY
        try:
            member = any(True for _ in self.rooms())
        except StorageError:
            return []  # asked again next time
        return self.router.announce_widely(member, now)

    def refresh(self, links: Iterable[int], now: float) -> list[int]:
        """The link to send a routine inventory to now: every REFRESH_EVERY s, a room
        member's neighbour that got it longest ago (none between times, for a node in no
        room, or without a room log)."""
        if now < self._next_refresh:
            return []
        self._next_refresh = now + REFRESH_EVERY
        if self.roomlog is None:
            return []
        try:
            member = any(True for _ in self.rooms())
        except StorageError:
            return []  # asked again next time
        swapped = self._swapped
        link = min(links, key=lambda k: swapped.get(k, float("-inf")), default=None)
        if not member or link is None:
            return []
        swapped[link] = now
        self.router.count("inventories_routine")
        return [link]

    def keep(self, envelope: Envelope, now: float) -> None:
        """Keep `envelope` in the room log if it is a room envelope of a stored type."""
        if self.roomlog is None or not kept_in_room_log(envelope):
            return
        try:
            self.roomlog.keep(envelope, now)
        except StorageError as exc:
            self.router.count("dropped_roomlog_error")
            log.warning("room log could not keep an envelope: %s", exc)

    def link_up(self, link: int, now: float) -> bool:
        """A link came up: True to send it our :meth:`inventory` now; False to wait until
        :meth:`next_deadline` and send it to the links :meth:`due` gives then."""
        self._swapped[link] = now  # it gets our inventory now, or when the pacer says
        return self.pacer.link_up(link, now)

    def link_down(self, link: int) -> None:
        self.pacer.link_down(link)
        self._swapped.pop(link, None)

    def next_deadline(self) -> float:
        """When :meth:`due` next has links (infinity when none waits)."""
        return self.pacer.next_deadline()

    def due(self) -> list[int]:
        """The links that waited for our inventory: send it to them now."""
        return self.pacer.flush()

    def inventory(self, now: float) -> Envelope | None:
        """Our signed INVENTORY for one neighbour (None without a readable room log)."""
        if self.roomlog is None:
            return None
        try:
            payload = self.roomlog.inventory(self.rooms())
        except StorageError as exc:
            log.warning("room log unreadable: %s", exc)
            return None
        inventory = self.router.make(EnvelopeType.INVENTORY, now, payload=payload, hop_limit=1)
        self.router.seen.add(inventory.message_id, now)
        return inventory

    def answer(self, payload: bytes, sent: Sent | None = None) -> Iterator[list[bytes]] | None:
        """The envelopes a neighbour's inventory lacks, as kept, in pages read one by one
        (hand each on with :func:`handed_on`). With `sent`, what this link was already
        sent counts as held (see :meth:`RoomLog.answer`). None for a malformed inventory
        (counted) or without a room log."""
        if self.roomlog is None:
            return None
        try:
            return self.roomlog.answer(payload, sent)
        except (ValueError, TypeError, msgpack.UnpackException):
            self.router.count("dropped_bad_inventory")
            return None
