"""Rooms: creating them, inviting, joining and removing members, and the events that say so.

The membership rules live in :mod:`chat.room` (a fold over signed events
hash-linked back to the room's genesis); this module stores the events, keeps
each conversation's state column in step, and sends events to the members who
must learn of them (pairwise-boxed control messages, through the outbox). The
admin passes every event it learns on to all members, so members who joined at
the same time learn of each other, and sends a joiner the whole history.

What it refuses, and counts (``control_rejected_<reason>``): events for a room
whose genesis this node does not hold (`unknown_room`), events whose author
lacks the power for them even in its own past (`no_power`), events that follow
unknown events when the sender is not in the room or too many wait already
(`unknown_parent`), invitations whose events do not make the sender the admin
and us an invitee (`not_admin`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chat import history
from chat.contacts import Contacts
from chat.dockeys import DocumentKeys
from chat.room import RoomEvent, RoomState, fold
from chat.senderkey import new_chain_key
from mesh.errors import ChatError, UsageError
from mesh.storage.store import Store
from mesh.wire.identity import decode_peer_id, encode_peer_id

if TYPE_CHECKING:  # the node's module (websockets, the router) only for running nodes
    from mesh.runtime.node import Node

log = logging.getLogger("meshnotes.chat")

MAX_NAME = 100
#: events one room keeps that wait for events not known here (from peers in the room)
MAX_WAITING = 256
#: events kept decoded and checked (about 1 KiB each at most)
MAX_CHECKED = 20_000
#: membership events in one `events` control message (each at most 1 KiB)
EVENTS_PER_MESSAGE = 100


class Rooms(DocumentKeys):
    """The rooms of one node. `send_control` queues a boxed control message for a peer."""

    def __init__(
        self,
        node: Node,
        store: Store,
        contacts: Contacts,
        send_control: Callable[[bytes, dict[str, Any], float], None],
        emit: Callable[[str, dict[str, Any]], None],
        wake: Callable[[], None],
    ) -> None:
        self.node = node
        self.store = store
        self.identity = node.identity
        self.contacts = contacts
        self.send_control = send_control
        self.emit = emit
        self.wake = wake
        self._states: dict[str, RoomState] = {}
        #: events whose signature was checked, by their signed bytes: a check's verdict does not
        #: change, and a state folded inside a transaction (not cached) reads them all again
        self._checked: dict[bytes, RoomEvent] = {}
        #: events refused one by one inside an `events` message that was taken
        self.refused_in_batch = 0
        self._key_hooks: list[Callable[[str, list[int]], None]] = []
        self._membership_hooks: list[Callable[[str, str], None]] = []

    def on_membership(self, hook: Callable[[str, str], None]) -> None:
        """Call `hook(room id, event kind)` whenever a room event from a peer is taken."""
        self._membership_hooks.append(hook)

    def _notify(self, hooks: list[Callable[..., None]], *args: object) -> None:
        for hook in list(hooks):
            try:
                hook(*args)
            except Exception:  # a layer above failing must not undo what was received
                log.exception("a room hook failed")

    def _now_ms(self) -> int:
        return int(self.node.clock() * 1000)

    def resolve(self, name: str) -> str:
        """A room by id, unambiguous id prefix, or name."""
        return history.room_id(self.store, name)

    # -- rooms -----------------------------------------------------------------------

    def state(self, conv_id: str) -> RoomState:
        """Who is in the room now (cached: the fold checks every event's signature).

        Callers must not change the state they get. It is cached only outside
        transactions, so an event whose transaction rolls back never sticks.
        """
        cached = self._states.get(conv_id)
        if cached is not None:
            return cached
        state = fold(decode_peer_id(conv_id), self._events(conv_id))
        if not self.store.db.conn.in_transaction:
            self._states[conv_id] = state
        return state

    def _events(self, conv_id: str) -> list[RoomEvent]:
        """The room's stored events; ones of an older format (before rooms were bound to
        their genesis) no longer decode and are left out."""
        events = []
        for row in self.store.query("SELECT signed FROM room_events WHERE conv_id = ?", (conv_id,)):
            signed = bytes(row["signed"])
            event = self._checked.get(signed)
            if event is None:
                try:
                    event = RoomEvent.decode(signed)
                except ChatError:
                    continue
                if len(self._checked) >= MAX_CHECKED:
                    self._checked.clear()
                self._checked[signed] = event
            events.append(event)
        return events

    def joined(self) -> list[bytes]:
        """The ids of the rooms this peer is a member of."""
        rows = self.store.query(
            "SELECT conv_id FROM conversations WHERE kind = 'room' AND state = 'joined'"
        )
        return [decode_peer_id(r["conv_id"]) for r in rows]

    def conversation(self, conv_id: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM conversations WHERE conv_id = ?", (conv_id,))
        return rows[0] if rows else None

    def new(self, name: str) -> str:
        """Create a room with this peer as its admin; return the room id."""
        name = name.strip()
        if not 0 < len(name) <= MAX_NAME:
            raise UsageError(f"a room name has 1..{MAX_NAME} characters")
        event = RoomEvent.genesis(self.identity, self._now_ms(), name, new_chain_key())
        conv_id = encode_peer_id(event.room_id)
        with self.store.atomic():
            self.store.execute(
                "INSERT INTO conversations (conv_id, kind, name, state, epoch, created_at)"
                " VALUES (?, 'room', ?, 'joined', 0, ?)",
                (conv_id, name, self.node.clock()),
            )
            self._store_event(conv_id, event)
            self._new_document_key(conv_id, 0, set(), self.node.clock())
        return conv_id

    def invite(self, room: str, peer: str) -> dict[str, Any]:
        conv_id = self.resolve(room)
        key = self.contacts.resolve(peer)
        state = self.state(conv_id)
        if state.admin != self.identity.public_key:
            raise UsageError("only the room's admin can invite")
        if key in state.members:
            raise UsageError(f"{encode_peer_id(key)[:8]} is already a member")
        event = self._event(state, "invite", target=key)
        now = self.node.clock()
        with self.store.atomic():
            self._store_event(conv_id, event)
            events = [
                r["signed"]
                for r in self.store.query(
                    "SELECT signed FROM room_events WHERE conv_id = ?", (conv_id,)
                )
            ]
            self.send_control(key, {"k": "invite", "room": state.room_id, "events": events}, now)
            self._broadcast_event(state, event, now, skip=frozenset({key}))
        self.wake()
        return {"room_id": conv_id, "invited": encode_peer_id(key)}

    def remove(self, room: str, peer: str) -> dict[str, Any]:
        conv_id = self.resolve(room)
        key = self.contacts.resolve(peer)
        state = self.state(conv_id)
        if state.admin != self.identity.public_key:
            raise UsageError("only the room's admin can remove members")
        if key not in state.members and key not in state.invited and key not in state.departed:
            raise UsageError(f"{encode_peer_id(key)[:8]} is not in the room")
        if key == self.identity.public_key:
            raise UsageError("the admin cannot remove itself")
        # its room envelopes up to the last one we hold count; any later one is refused (for a
        # peer that left already, this can only lower the cut its own leave named)
        event = self._event(state, "remove", target=key, cut=self._last_seq(state.room_id, key))
        now = self.node.clock()
        with self.store.atomic():
            self._store_event(conv_id, event)
            # the removed peer learns it was removed; nothing sent later is readable to it
            self._broadcast_event(state, event, now)
            after = self.state(conv_id)
            if after.epoch != state.epoch:
                self._new_document_key(conv_id, after.epoch, after.members, now)
        self.wake()
        return {"room_id": conv_id, "removed": encode_peer_id(key), "epoch": after.epoch}

    def join(self, room: str) -> dict[str, Any]:
        """Accept a pending invitation."""
        conv_id = self.resolve(room)
        state = self.state(conv_id)
        if self.identity.public_key in state.members:
            raise UsageError("you are already a member")
        if self.identity.public_key not in state.invited:
            raise UsageError("you have no pending invitation to that room")
        self._join(conv_id, state, self.node.clock())
        self.wake()
        return {"room_id": conv_id, "state": "joined"}

    def leave(self, room: str) -> dict[str, Any]:
        """Leave a room (the admin cannot); the others move to a new key epoch."""
        conv_id = self.resolve(room)
        state = self.state(conv_id)
        me = self.identity.public_key
        if me not in state.members:
            raise UsageError("you are not a member of that room")
        if me == state.admin:
            raise UsageError("the admin cannot leave the room; hand the room over first")
        event = self._event(state, "leave", cut=self._last_seq(state.room_id, me))
        with self.store.atomic():
            self._store_event(conv_id, event)
            self._broadcast_event(state, event, self.node.clock())
        self.wake()
        return {"room_id": conv_id, "state": "left"}

    def hand_over(self, room: str, peer: str) -> dict[str, Any]:
        """Make a member the room's admin (the admin only); this peer stays a member."""
        conv_id = self.resolve(room)
        key = self.contacts.resolve(peer)
        state = self.state(conv_id)
        if state.admin != self.identity.public_key:
            raise UsageError("only the room's admin can hand the room over")
        if key not in state.members or key == self.identity.public_key:
            raise UsageError(f"{encode_peer_id(key)[:8]} is not another member of the room")
        event = self._event(state, "admin", target=key)
        with self.store.atomic():
            self._store_event(conv_id, event)
            self._broadcast_event(state, event, self.node.clock())
        self.wake()
        return {"room_id": conv_id, "admin": encode_peer_id(key)}

    def _event(self, state: RoomState, kind: str, target: bytes = b"", cut: int = 0) -> RoomEvent:
        """A new event of ours that follows every event we know of the room."""
        return RoomEvent.make(
            self.identity, state.room_id, kind, self._now_ms(), state.heads[-16:], target, cut
        )

    def _last_seq(self, room_id: bytes, author: bytes) -> int:
        """The last of `author`'s room envelopes this node holds with none missing before it."""
        roomlog = self.node.roomlog
        return roomlog.vector(room_id).get(author, 0) if roomlog is not None else 0

    def _join(self, conv_id: str, state: RoomState, now: float) -> None:
        event = self._event(state, "join")
        with self.store.atomic():
            self._store_event(conv_id, event)
            self._broadcast_event(state, event, now)

    def all(self) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT * FROM conversations WHERE kind = 'room' ORDER BY name, conv_id"
        )
        result = []
        for row in rows:
            state = self.state(row["conv_id"])
            result.append(
                {
                    "room_id": row["conv_id"],
                    "name": row["name"],
                    "state": row["state"],
                    "epoch": state.epoch,
                    "admin": encode_peer_id(state.admin) if state.admin else None,
                    "members": sorted(encode_peer_id(m) for m in state.members),
                    "invited": sorted(encode_peer_id(m) for m in state.invited),
                    "invited_by": row["invited_by"],
                }
            )
        return result

    def _check_event(self, before: RoomState, event: RoomEvent, sender: bytes) -> None:
        """Raise ChatError for an event not to be kept: one whose author lacks the power
        for it in its own past, or one that follows unknown events, unless a peer of the
        room sent it and few wait already."""
        after = fold(before.room_id, [*before.applied, *before.refused, *before.waiting, event])
        if any(e.event_id == event.event_id for e in after.powerless):
            raise ChatError(f"{event.kind} event by a peer without the power", reason="no_power")
        if any(e.event_id == event.event_id for e in after.waiting):
            in_room = sender in before.members or sender in before.invited
            if not in_room or len(before.waiting) >= MAX_WAITING:
                raise ChatError("event that follows events not known here", reason="unknown_parent")

    def _store_event(self, conv_id: str, event: RoomEvent) -> bool:
        """Store an event (in the caller's transaction) and refresh the conversation's state."""
        self._states.pop(conv_id, None)
        added = self.store.execute(
            "INSERT OR IGNORE INTO room_events"
            " (event_id, conv_id, author, kind, target, ts, signed) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.event_id.hex(),
                conv_id,
                encode_peer_id(event.author),
                event.kind,
                encode_peer_id(event.target) if event.target else None,
                event.ts,
                event.signed,
            ),
        )
        state = self.state(conv_id)
        me = self.identity.public_key
        if me in state.members:
            status = "joined"
        elif me in state.invited:
            status = "invited"
        elif me in state.departed:
            status = "removed"
        else:
            status = "unknown"
        self.store.execute(
            "UPDATE conversations SET state = ?, epoch = ?, name = ? WHERE conv_id = ?",
            (status, state.epoch, state.name, conv_id),
        )
        return bool(added)

    def _broadcast_event(
        self, state: RoomState, event: RoomEvent, now: float, skip: frozenset[bytes] = frozenset()
    ) -> None:
        """Send an event to every member and invitee as the state before it knew them."""
        targets = (state.members | state.invited | {event.target}) - skip
        targets.discard(self.identity.public_key)
        targets.discard(b"")
        for peer in targets:
            self.send_control(
                peer, {"k": "event", "room": state.room_id, "event": event.signed}, now
            )

    def handle_control(self, sender: bytes, body: dict[str, Any]) -> str | None:
        kind, room_id = body.get("k"), body.get("room")
        if not isinstance(room_id, bytes) or len(room_id) != 32:
            raise ChatError("control message without a room", reason="other")
        conv_id = encode_peer_id(room_id)
        now = self.node.clock()
        if kind == "invite":
            signed = body.get("events")
            if not isinstance(signed, list) or len(signed) > 10_000:
                raise ChatError("malformed invitation", reason="malformed")
            events = [RoomEvent.decode(s) for s in signed if isinstance(s, bytes)]
            state = fold(room_id, events)
            if not state.known:
                raise ChatError("invitation to a room without its genesis", reason="unknown_room")
            if state.admin != sender or self.identity.public_key not in state.invited:
                raise ChatError("invitation not from the admin, or not for us", reason="not_admin")
            refused = {e.event_id for e in state.powerless + state.waiting}
            events = [e for e in events if e.event_id not in refused]
            with self.store.atomic():
                self.store.execute(
                    "INSERT OR IGNORE INTO conversations (conv_id, kind, name, state, epoch,"
                    " created_at, invited_by) VALUES (?, 'room', ?, 'invited', ?, ?, ?)",
                    (conv_id, state.name, state.epoch, now, encode_peer_id(sender)),
                )
                for event in events:
                    self._store_event(conv_id, event)
            state = self.state(conv_id)
            invited = self.identity.public_key in state.invited
            if invited and self.contacts.is_contact(encode_peer_id(sender)):
                self._join(conv_id, state, now)
                self.wake()
            # after joining, so that a listener that joins on invitations finds it done
            self.emit(
                "invite", {"room_id": conv_id, "name": state.name, "from": encode_peer_id(sender)}
            )
            return conv_id
        if kind == "event":
            return self._take_events(sender, room_id, [body.get("event", b"")], now)
        if kind == "events":
            signed = body.get("events")
            if not isinstance(signed, list) or not 0 < len(signed) <= EVENTS_PER_MESSAGE:
                raise ChatError("malformed events", reason="malformed")
            return self._take_events(sender, room_id, signed, now)
        if kind == "dockeys":
            return self._receive_document_keys(sender, conv_id, body.get("keys"))
        raise ChatError(f"unknown control kind {kind!r}", reason="other")

    def _send_events(self, conv_id: str, peer: bytes, now: float) -> None:
        """Every stored event of the room, so the peer holds the whole graph: a few
        `events` messages, not one message an event (29 joiners of a room made the
        admin send about 1,300 at once: each joiner every event stored by then)."""
        room_id = decode_peer_id(conv_id)
        signed = [event.signed for event in self._events(conv_id)]
        for start in range(0, len(signed), EVENTS_PER_MESSAGE):
            batch = signed[start : start + EVENTS_PER_MESSAGE]
            self.send_control(peer, {"k": "events", "room": room_id, "events": batch}, now)

    def _take_events(self, sender: bytes, room_id: bytes, signed: list[Any], now: float) -> str:
        """Check and keep membership events a peer sent. One that cannot be kept is refused
        alone when others came with it (an admin's whole graph must not wait for one)."""
        conv_id = encode_peer_id(room_id)
        if self.conversation(conv_id) is None:
            raise ChatError("event for an unknown room", reason="unknown_room")
        before = self.state(conv_id)
        if not before.known:
            raise ChatError("event for a room whose genesis we lack", reason="unknown_room")
        taken: list[RoomEvent] = []
        for blob in signed:
            try:
                event = RoomEvent.decode(blob if isinstance(blob, bytes) else b"")
                if event.room_id != room_id:
                    raise ChatError("event for another room", reason="malformed")
                self._check_event(self.state(conv_id), event, sender)
            except ChatError:
                if len(signed) == 1:
                    raise
                self.refused_in_batch += 1
                continue
            with self.store.atomic():
                if self._store_event(conv_id, event):
                    taken.append(event)
        if not taken:
            return conv_id
        after = self.state(conv_id)
        # the admin passes every new event on, so that members who joined at the same
        # time learn of each other
        if after.admin == self.identity.public_key:
            with self.store.atomic():
                for event in taken:
                    if event.author != after.admin:
                        skip = frozenset({event.author})
                        self._broadcast_event(before, event, now, skip=skip)
                for joined in _newly_joined(before, after):
                    self._send_events(conv_id, joined, now)
                    self._send_document_keys(conv_id, joined, now)
                if after.epoch != before.epoch:
                    self._new_document_key(conv_id, after.epoch, after.members, now)
            self.wake()
        for event in taken:
            self.emit("room", {"room_id": conv_id, "event": event.kind})
        self._notify(self._membership_hooks, conv_id, taken[-1].kind)
        return conv_id


def _newly_joined(before: RoomState, after: RoomState) -> list[bytes]:
    """The members whose join counts in `after` and did not in `before`: the join that just
    came, and any that waited for it (one that named a join the admin had not heard of yet)."""
    counted = {e.event_id for e in before.applied}
    return [
        e.author
        for e in after.applied
        if e.kind == "join" and e.event_id not in counted and e.author in after.members
    ]


class RoomBook(Rooms):
    """The rooms, read only: resolve, state, joined, all (:mod:`chat.archive`).

    A node may be adding events meanwhile: a cached state holds only while the
    room's count of stored events stays the same (events are never deleted).
    """

    def __init__(self, store: Store) -> None:  # no node: see chat.archive
        self.store = store
        self._states = {}
        self._checked = {}
        self._counted: dict[str, int] = {}

    def state(self, conv_id: str) -> RoomState:
        rows = self.store.query(
            "SELECT COUNT(*) AS n FROM room_events WHERE conv_id = ?", (conv_id,)
        )
        if self._counted.get(conv_id) != rows[0]["n"]:
            self._states.pop(conv_id, None)
            self._counted[conv_id] = rows[0]["n"]
        return super().state(conv_id)
