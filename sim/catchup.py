"""Room-log catch-up and a shared note on the simulator.

:class:`CatchUp` runs the node's own catch-up (:class:`mesh.runtime.catchup.CatchUp`,
with a :class:`~mesh.storage.roomlog.RoomLog` on an in-memory
:class:`~mesh.storage.store.Store`) on simulated nodes: every room envelope of a
stored type that a node sends or delivers goes into its room log; when a link
comes up, each end sends the other an INVENTORY, paced as the node paces it,
and answers the other's inventory with the kept envelopes it lacks, handed on
one more link; a room member also sends one routine inventory every
``REFRESH_EVERY`` seconds (:meth:`CatchUp.start_refresh`), as the node's timer
loop does. Only the asyncio glue is replaced: answers go out at once rather
than streamed within a link's budget.

:class:`SharedNote` is one note edited by a few members: real pycrdt documents
laid out as crdt/note.py lays them out (a ``body`` Text), whose updates ride as
ROOM-addressed NOTE envelopes numbered per author, as crdt/notes.py numbers
them. Not modelled: the sender-key encryption of the payload (the update goes
in clear) and the batching of several edits into one envelope.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pycrdt

from crdt.holding import HeldUpdates
from mesh.routing.router import Action, Send
from mesh.runtime import catchup
from mesh.storage.roomlog import RoomLog
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from sim.engine import Sim


class CatchUp:
    """A room log per node (made on first use) and the inventory swap on every link-up."""

    def __init__(self, sim: Sim, interests: dict[int, list[bytes]]) -> None:
        self.sim = sim
        self.interests = interests  # node -> rooms it belongs to (named in its inventories)
        self.nodes: dict[int, catchup.CatchUp] = {}
        self.logs: dict[int, RoomLog] = {}
        self.inventories = 0
        self.handed_on = 0

    def log(self, node: int) -> RoomLog:
        self._node(node)
        return self.logs[node]

    def _node(self, node: int) -> catchup.CatchUp:
        part = self.nodes.get(node)
        if part is None:
            log = self.logs[node] = RoomLog(Store(None))
            rooms = self.interests.get(node, [])
            part = self.nodes[node] = catchup.CatchUp(self.sim.routers[node], log, lambda: rooms)
        return part

    def keep(self, node: int, envelope: Envelope) -> None:
        """Keep a room envelope of a stored type that `node` sent or delivered."""
        if catchup.kept_in_room_log(envelope):
            self._node(node).keep(envelope, self.sim.now)

    def link_up(self, node: int, link: int) -> None:
        """Send our vectors to the new neighbour (nodes that log nothing and join no room: none)."""
        if node not in self.logs and not self.interests.get(node):
            return
        part = self._node(node)
        if part.link_up(link, self.sim.now):
            self._send_inventory(node, link)
        else:
            self.sim.at(part.next_deadline(), lambda: self._send_due(node))

    def start_refresh(self, start: float, end: float) -> None:
        """Schedule every member's routine inventories from `start` to `end`, each member at
        its own phase (as nodes started at different times are)."""
        for node in sorted(self.interests):
            phase = (node * 7919 % 1000) / 1000 * catchup.REFRESH_EVERY
            self._refresh_at(node, start + phase, end)

    def _refresh_at(self, node: int, when: float, end: float) -> None:
        if when < end:
            self.sim.at(when, lambda: self._refresh(node, when, end))

    def _refresh(self, node: int, when: float, end: float) -> None:
        if self.sim.mine(node) and self.sim.online[node]:
            links = self.sim.routers[node].links
            for link in self._node(node).refresh(links, self.sim.now):
                self._send_inventory(node, link)
        self._refresh_at(node, when + catchup.REFRESH_EVERY, end)

    def _send_due(self, node: int) -> None:
        for link in self.nodes[node].due():
            if self.sim.up[link >> 1]:
                self._send_inventory(node, link)

    def _send_inventory(self, node: int, link: int) -> None:
        inventory = self._node(node).inventory(self.sim.now)
        assert inventory is not None  # an in-memory log is always readable
        self.inventories += 1
        self.sim.execute(node, [Send(link, inventory.encode())])

    def answer(self, node: int, link: int | None, envelope: Envelope) -> None:
        """A neighbour's inventory arrived: send it what it lacks."""
        if link is None or node not in self.logs:
            return
        pages = self.nodes[node].answer(envelope.payload)
        sends: list[Action] = [
            Send(link, catchup.handed_on(data)) for page in pages or () for data in page
        ]
        self.handed_on += len(sends)
        self.sim.execute(node, sends)


@dataclass
class SharedNote:
    """One note, a pycrdt document per member, and what each member has applied.

    Each member makes `edits_each` edits; a member is *full* once it holds all
    of them. In a run spread over processes, each part edits and applies for
    the members it plays (see :meth:`observed`).
    """

    room: bytes
    members: list[int]
    seed: int
    edits_each: int
    docs: dict[int, pycrdt.Doc] = field(default_factory=dict)  # type: ignore[type-arg]
    seqs: dict[int, int] = field(default_factory=dict)  # member -> last seq it authored
    applied: dict[int, set[tuple[bytes, int]]] = field(default_factory=dict)
    rngs: dict[int, random.Random] = field(default_factory=dict)  # where each member types
    full_at: dict[int, float] = field(default_factory=dict)  # member -> when it held every edit
    held: dict[int, HeldUpdates] = field(default_factory=dict)  # held back, per member
    edits: int = 0  # made here
    last_edit: float = 0.0

    def __post_init__(self) -> None:
        for i, member in enumerate(self.members):
            # fixed client ids keep runs deterministic (pycrdt picks random ones)
            self.docs[member] = pycrdt.Doc(client_id=1 + self.seed * 1000 + i)
            self.docs[member].get("body", type=pycrdt.Text)
            doc = self.docs[member]
            self.held[member] = HeldUpdates(doc.apply_update, doc.get_state)
            self.applied[member] = set()
            self.rngs[member] = random.Random(f"{self.seed}/note/{member}")

    @property
    def expected(self) -> int:
        """Edits in all, once every member made its own."""
        return len(self.members) * self.edits_each

    def text(self, member: int) -> str:
        return str(self.docs[member].get("body", type=pycrdt.Text))

    def edit(self, sim: Sim, member: int) -> Envelope:
        """Insert a few words at a random place; return the signed envelope carrying the update."""
        doc = self.docs[member]
        body = doc.get("body", type=pycrdt.Text)
        before = doc.get_state()
        position = self.rngs[member].randrange(len(str(body)) + 1)
        body.insert(position, f"[{member}:{self.seqs.get(member, 0) + 1}]")
        update = doc.get_update(before)
        self.seqs[member] = self.seqs.get(member, 0) + 1
        envelope = sim.routers[member].make(
            EnvelopeType.NOTE,
            sim.now,
            dest_kind=DestKind.ROOM,
            dest=self.room,
            payload=bytes(update),
            seq=self.seqs[member],
        )
        self.edits += 1
        self.last_edit = sim.now
        self._applied(sim, member, envelope)
        return envelope

    def deliver(self, sim: Sim, member: int, envelope: Envelope) -> None:
        """A member got a note update: apply it once what it builds on is here, as
        crdt/documents.py does (see crdt/holding.py)."""
        self.held[member].offer(envelope.payload)
        self.held[member].release()
        self._applied(sim, member, envelope)

    def _applied(self, sim: Sim, member: int, envelope: Envelope) -> None:
        done = self.applied[member]
        done.add((envelope.author, envelope.seq))
        if len(done) == self.expected and member not in self.full_at:
            self.full_at[member] = sim.now

    def observed(self, sim: Sim) -> dict[str, Any]:
        """For the members `sim` plays: (text, full document encoding, when full) each."""
        return {
            "members": {
                m: (self.text(m), bytes(self.docs[m].get_update()), self.full_at.get(m))
                for m in self.members
                if sim.mine(m)
            },
            "edits": self.edits,
            "last_edit": self.last_edit,
        }
