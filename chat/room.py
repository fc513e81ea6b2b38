"""Room membership: signed events linked by hash from a genesis, folded into who holds which power.

Events (msgpack, signed by their author with Ed25519)::

    [version=2, room_id(32, or b"" in the genesis), kind, target(32 or b""), ts_ms,
     author(32), name, prev([event id, ...]), cut]

    create   the genesis: the creator opens the room and is its admin.
             `target` is a random nonce, `prev` is empty, and the room id IS
             the genesis's event id (BLAKE2b-256 of its signed body), so a
             room id names one creator for good.
    invite   the admin invites `target`
    join     an invited peer accepts (target empty)
    remove   the admin removes a member or an invitee             epoch + 1 if a member
             (`cut`: the last of the target's room envelopes that count)
    leave    a member who is not the admin leaves (target empty) epoch + 1
             (`cut`: the leaver's own last room envelope)
    admin    the admin hands its power to a member `target`, and stays a member

Every event but the genesis names the events it follows (`prev`: the heads
its author knew, 1..MAX_PREV ids). The events form a graph that must lead
back to the genesis; an event whose ancestors are not all known waits.

Authority is checked twice, and an event counts only if both agree:

- *causally*: its author held the power for it in the state folded from the
  event's own ancestors (what the author could see when it wrote it);
- *in order*: every member sorts the events the same way — parents before
  children; among events ready at once, the current admin's first, then by
  (timestamp, event id) — and applies them one by one; an event that is not
  valid at its place (a member removed by a concurrent event leaves, a
  concurrent hand-over took the power first) is left out.

A timestamp never grants power: it only orders events that are concurrent,
after the parent links and the admin's precedence, and both checks must pass.
The epoch counts departures; every departure starts a new epoch, for which
every remaining member makes a fresh sender key. A departed member's `cut`
is the lowest that any departure event names for it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import msgpack
import nacl.bindings
import nacl.exceptions

from mesh.errors import ChatError
from mesh.wire.identity import Identity

VERSION = 2
KINDS = ("create", "invite", "join", "remove", "leave", "admin")
#: kinds only the admin may write, each naming a target
ADMIN_KINDS = ("invite", "remove", "admin")
MAX_EVENT_SIZE = 1024
MAX_NAME = 100
#: parents one event names at most (the rest stay heads for the next event)
MAX_PREV = 16
#: events one room's fold takes at most; past it, new events are refused
MAX_ROOM_EVENTS = 2000


def event_id_of(signed: bytes) -> bytes:
    return hashlib.blake2b(signed[:-64], digest_size=32).digest()


@dataclass(frozen=True)
class RoomEvent:
    """One signed membership event; `signed` is body || signature."""

    room_id: bytes
    kind: str
    target: bytes
    ts: int
    author: bytes
    name: str
    prev: tuple[bytes, ...]
    cut: int
    signed: bytes
    event_id: bytes

    @classmethod
    def genesis(cls, identity: Identity, ts: int, name: str, nonce: bytes) -> RoomEvent:
        """A new room's first event; its event id is the room id."""
        if len(nonce) != 32:
            raise ValueError("a genesis nonce has 32 bytes")
        body = [VERSION, b"", "create", nonce, ts, identity.public_key, name[:MAX_NAME], [], 0]
        return cls._signed(identity, body)

    @classmethod
    def make(
        cls,
        identity: Identity,
        room_id: bytes,
        kind: str,
        ts: int,
        prev: list[bytes] | tuple[bytes, ...],
        target: bytes = b"",
        cut: int = 0,
    ) -> RoomEvent:
        """An event of `kind` following the events `prev` (the author's heads)."""
        if kind not in KINDS or kind == "create":
            raise ValueError(kind)
        parents = sorted(set(prev))
        if not 0 < len(parents) <= MAX_PREV:
            raise ValueError(f"an event follows 1..{MAX_PREV} events")
        body = [VERSION, room_id, kind, target, ts, identity.public_key, "", parents, cut]
        return cls._signed(identity, body)

    @classmethod
    def _signed(cls, identity: Identity, body: list[object]) -> RoomEvent:
        packed = bytes(msgpack.packb(body))
        return cls.decode(packed + identity.sign(packed))

    @classmethod
    def decode(cls, signed: bytes) -> RoomEvent:
        """Parse and verify a signed event; raise ChatError for anything wrong."""
        if not 64 < len(signed) <= MAX_EVENT_SIZE:
            raise ChatError("membership event has a bad size", reason="malformed")
        body, signature = signed[:-64], signed[-64:]
        try:
            fields = msgpack.unpackb(body)
            version, room_ref, kind, target, ts, author, name, prev, cut = fields
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError("malformed membership event", reason="malformed") from exc
        valid = (
            version == VERSION
            and kind in KINDS
            and isinstance(room_ref, bytes)
            and isinstance(target, bytes)
            and isinstance(ts, int)
            and 0 <= ts < 2**63
            and isinstance(author, bytes)
            and len(author) == 32
            and isinstance(name, str)
            and isinstance(prev, list)
            and all(isinstance(p, bytes) and len(p) == 32 for p in prev)
            and prev == sorted(set(prev))
            and isinstance(cut, int)
            and 0 <= cut < 2**63
        )
        if valid and kind == "create":
            valid = room_ref == b"" and len(target) == 32 and not prev and cut == 0
            valid = valid and 0 < len(name) <= MAX_NAME
        elif valid:
            valid = len(room_ref) == 32 and 0 < len(prev) <= MAX_PREV and name == ""
            valid = valid and len(target) == (32 if kind in ADMIN_KINDS else 0)
            valid = valid and (cut == 0 or kind in ("remove", "leave"))
        if not valid:
            raise ChatError("malformed membership event", reason="malformed")
        try:
            nacl.bindings.crypto_sign_open(signature + body, author)
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise ChatError(
                "membership event with a bad signature", reason="bad_signature"
            ) from exc
        event_id = event_id_of(signed)
        room_id = event_id if kind == "create" else room_ref
        return cls(room_id, kind, target, ts, author, name, tuple(prev), cut, signed, event_id)


@dataclass
class RoomState:
    """Who is in a room, and who holds which power, as the events so far say."""

    room_id: bytes
    name: str = ""
    admin: bytes | None = None
    members: set[bytes] = field(default_factory=set)
    invited: set[bytes] = field(default_factory=set)
    departed: set[bytes] = field(default_factory=set)
    #: a departed peer's last room envelope (per-author sequence number) that counts
    cuts: dict[bytes, int] = field(default_factory=dict)
    epoch: int = 0
    #: the events that count, in the order they were applied
    applied: list[RoomEvent] = field(default_factory=list)
    #: events that do not count: connected to the genesis, but without the power for them
    refused: list[RoomEvent] = field(default_factory=list)
    #: of those, the ones whose author lacked the power even in its own past (never stored)
    powerless: list[RoomEvent] = field(default_factory=list)
    #: events that wait for ancestors not known here
    waiting: list[RoomEvent] = field(default_factory=list)
    #: the applied or refused events that no other known event follows (what the next one names)
    heads: list[bytes] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """Whether this node holds the room's genesis."""
        return self.admin is not None

    def counts(self, author: bytes, seq: int) -> bool:
        """Whether a room envelope of `author` numbered `seq` counts: a member's do, and a
        departed peer's up to its cut."""
        if author in self.members:
            return True
        return author in self.departed and seq <= self.cuts.get(author, 0)

    def allows(self, event: RoomEvent) -> bool:
        """Whether `event`'s author holds the power for it in this state."""
        kind, author, target = event.kind, event.author, event.target
        if self.admin is None:
            return False
        if kind == "create":
            return False  # there is one genesis
        if kind == "invite":
            return author == self.admin and target not in self.members | self.invited
        if kind == "join":
            return author in self.invited
        if kind == "remove":
            return (
                author == self.admin
                and target != author
                and (target in self.members or target in self.invited or target in self.departed)
            )
        if kind == "leave":
            return author in self.members and author != self.admin
        if kind == "admin":
            return author == self.admin and target in self.members and target != author
        return False

    def apply(self, event: RoomEvent) -> None:
        """Apply an event that `allows` passed."""
        kind, author, target = event.kind, event.author, event.target
        if kind == "create":
            self.admin, self.name = author, event.name
            self.members.add(author)
        elif kind == "invite":
            self.invited.add(target)
            self.departed.discard(target)
            self.cuts.pop(target, None)
        elif kind == "join":
            self.invited.discard(author)
            self.members.add(author)
        elif kind == "remove":
            if target in self.members:
                self.members.discard(target)
                self.epoch += 1
                self._depart(target, event.cut)
            elif target in self.invited:
                self.invited.discard(target)
                self._depart(target, 0)
            else:  # already gone: a removal can only cut its edits shorter
                self._depart(target, event.cut)
        elif kind == "leave":
            self.members.discard(author)
            self.epoch += 1
            self._depart(author, event.cut)
        elif kind == "admin":
            self.admin = target
        self.applied.append(event)

    def _depart(self, peer: bytes, cut: int) -> None:
        self.departed.add(peer)
        self.cuts[peer] = min(cut, self.cuts.get(peer, cut))


def _sorted(events: dict[bytes, RoomEvent], genesis: bytes) -> list[RoomEvent]:
    """The events in the order every member applies them: parents first; among events
    ready at once, admin kinds first, then by (timestamp, event id)."""
    children: dict[bytes, list[bytes]] = {}
    missing: dict[bytes, int] = {}
    for event in events.values():
        missing[event.event_id] = len(event.prev)
        for parent in event.prev:
            children.setdefault(parent, []).append(event.event_id)
    ready: list[tuple[bool, int, bytes]] = [(False, 0, genesis)]
    order: list[RoomEvent] = []
    while ready:
        ready.sort(reverse=True)
        event = events[ready.pop()[2]]
        order.append(event)
        for child in children.get(event.event_id, ()):
            missing[child] -= 1
            if missing[child] == 0:
                later = events[child]
                ready.append((later.kind not in ADMIN_KINDS, later.ts, child))
    return order


def _replay(order: list[RoomEvent], take: int, allowed: set[bytes]) -> RoomState:
    """The state after the events of `order` whose bit is set in `take` (the genesis is bit 0),
    those not `allowed` left out, each applied if valid at its place."""
    state = RoomState(order[0].room_id)
    state.apply(order[0])
    for pos in range(1, len(order)):
        event = order[pos]
        if take >> pos & 1 and event.event_id in allowed and state.allows(event):
            state.apply(event)
    return state


def fold(room_id: bytes, events: list[RoomEvent]) -> RoomState:
    """Compute a room's state from its events (any order, any duplicates).

    Events of other rooms are ignored; events that wait for unknown ancestors
    land in `waiting`; connected events without the power in `refused`.
    """
    unique = {e.event_id: e for e in events if e.room_id == room_id}
    genesis = unique.get(room_id)
    if genesis is None or genesis.kind != "create":
        return RoomState(room_id, waiting=sorted(unique.values(), key=lambda e: e.event_id))
    # connected: every ancestor known, back to the genesis (a bounded number of them)
    connected: dict[bytes, RoomEvent] = {room_id: genesis}
    pending = sorted(
        (e for e in unique.values() if e.kind != "create"), key=lambda e: (e.ts, e.event_id)
    )
    progress = True
    while progress:
        progress = False
        rest = []
        for event in pending:
            if len(connected) < MAX_ROOM_EVENTS and all(p in connected for p in event.prev):
                connected[event.event_id] = event
                progress = True
            else:
                rest.append(event)
        pending = rest
    order = _sorted(connected, room_id)
    position = {e.event_id: pos for pos, e in enumerate(order)}
    ancestors = [0] * len(order)
    allowed: set[bytes] = {room_id}
    allowed_mask = 1
    state = _replay(order, 1, allowed)
    for pos in range(1, len(order)):
        event = order[pos]
        above = 0
        for parent in event.prev:
            at = position[parent]
            above |= ancestors[at] | 1 << at
        ancestors[pos] = above
        # causal: the author's power as its ancestors say; when every event that counted
        # so far is among them (a chain), that is the state so far
        past = state if allowed_mask & ~above == 0 else _replay(order, above, allowed)
        if past.allows(event):
            allowed.add(event.event_id)
            allowed_mask |= 1 << pos
            if state.allows(event):
                state.apply(event)
    applied = {e.event_id for e in state.applied}
    state.refused = [e for e in order if e.event_id not in applied]
    state.powerless = [e for e in order if e.event_id not in allowed]
    state.waiting = pending
    named = {p for i in allowed for p in connected[i].prev}
    state.heads = sorted(i for i in allowed if i not in named)
    return state
