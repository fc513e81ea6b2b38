"""Room membership: a set of signed events, folded into who is in the room at which epoch.

Events (msgpack, signed by their author with Ed25519)::

    [version=1, room_id(32), kind, target(32 or b""), ts_ms, author(32), name]

    create   the creator opens the room and is its admin       (first, once)
    invite   the admin invites `target`
    join     an invited peer accepts (target == author)
    remove   the admin removes a member or an invitee          epoch + 1 if a member
    leave    a member who is not the admin leaves              epoch + 1

Events are applied in (ts, event id) order; one that is not valid at its
place is retried after the others (clocks differ, events arrive out of
order) and dropped if it never becomes valid. The epoch counts departures:
every departure starts a new epoch, for which every remaining member makes a
fresh sender key, so a departed member reads nothing sent after it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import msgpack
import nacl.bindings
import nacl.exceptions

from mesh.errors import ChatError
from mesh.identity import Identity

KINDS = ("create", "invite", "join", "remove", "leave")
MAX_EVENT_SIZE = 1024
MAX_NAME = 100


@dataclass(frozen=True)
class RoomEvent:
    """One signed membership event; `signed` is body || signature."""

    room_id: bytes
    kind: str
    target: bytes
    ts: int
    author: bytes
    name: str
    signed: bytes

    @property
    def event_id(self) -> bytes:
        return hashlib.blake2b(self.signed[:-64], digest_size=32).digest()

    @classmethod
    def create(
        cls,
        identity: Identity,
        room_id: bytes,
        kind: str,
        ts: int,
        target: bytes = b"",
        name: str = "",
    ) -> RoomEvent:
        if kind not in KINDS:
            raise ValueError(kind)
        body = msgpack.packb([1, room_id, kind, target, ts, identity.public_key, name[:MAX_NAME]])
        return cls(
            room_id,
            kind,
            target,
            ts,
            identity.public_key,
            name[:MAX_NAME],
            body + identity.sign(body),
        )

    @classmethod
    def decode(cls, signed: bytes) -> RoomEvent:
        """Parse and verify a signed event; raise ChatError for anything wrong."""
        if not 64 < len(signed) <= MAX_EVENT_SIZE:
            raise ChatError("membership event has a bad size")
        body, signature = signed[:-64], signed[-64:]
        try:
            version, room_id, kind, target, ts, author, name = msgpack.unpackb(body)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError("malformed membership event") from exc
        valid = (
            version == 1
            and isinstance(room_id, bytes)
            and len(room_id) == 32
            and kind in KINDS
            and isinstance(target, bytes)
            and len(target) in (0, 32)
            and isinstance(ts, int)
            and 0 <= ts < 2**63
            and isinstance(author, bytes)
            and len(author) == 32
            and isinstance(name, str)
            and len(name) <= MAX_NAME
        )
        if not valid:
            raise ChatError("malformed membership event")
        try:
            nacl.bindings.crypto_sign_open(signature + body, author)
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise ChatError("membership event with a bad signature") from exc
        return cls(room_id, kind, target, ts, author, name, signed)


@dataclass
class RoomState:
    """Who is in a room, as the events so far say."""

    room_id: bytes
    name: str = ""
    admin: bytes | None = None
    members: set[bytes] = field(default_factory=set)
    invited: set[bytes] = field(default_factory=set)
    departed: set[bytes] = field(default_factory=set)
    epoch: int = 0
    applied: list[RoomEvent] = field(default_factory=list)

    def _apply(self, event: RoomEvent) -> bool:
        kind, author, target = event.kind, event.author, event.target
        if kind == "create":
            if self.admin is not None or target:
                return False
            self.admin, self.name = author, event.name
            self.members.add(author)
        elif self.admin is None:
            return False  # nothing counts before the room exists
        elif kind == "invite":
            if author != self.admin or target in self.members or not target:
                return False
            self.invited.add(target)
            self.departed.discard(target)
        elif kind == "join":
            if author not in self.invited or target != author:
                return False
            self.invited.discard(author)
            self.members.add(author)
        elif kind == "remove":
            if author != self.admin or target == self.admin:
                return False
            if target in self.members:
                self.members.discard(target)
                self.epoch += 1
            elif target in self.invited:
                self.invited.discard(target)
            else:
                return False
            self.departed.add(target)
        elif kind == "leave":
            if author not in self.members or author == self.admin:
                return False
            self.members.discard(author)
            self.departed.add(author)
            self.epoch += 1
        self.applied.append(event)
        return True


def fold(room_id: bytes, events: list[RoomEvent]) -> RoomState:
    """Compute a room's state from its events (any order; invalid ones are left out)."""
    state = RoomState(room_id)
    unique = {e.event_id: e for e in events if e.room_id == room_id}
    waiting = sorted(unique.values(), key=lambda e: (e.ts, e.event_id))
    progress = True
    while waiting and progress:
        progress = False
        still = []
        for event in waiting:
            if state._apply(event):
                progress = True
            else:
                still.append(event)
        waiting = still
    return state
