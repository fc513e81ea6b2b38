"""Rooms: creating them, inviting, joining and removing members, and the events that say so.

The membership rules live in :mod:`mesh.room` (a fold over signed events);
this module stores the events, keeps each conversation's state column in step,
and sends events to the members who must learn of them (pairwise-boxed
control messages, through the outbox). The admin passes every event it
learns on to all members, so members who joined at the same time learn of
each other, and sends a joiner the whole history of events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mesh.contacts import Contacts
from mesh.errors import ChatError, UsageError
from mesh.identity import decode_peer_id, encode_peer_id
from mesh.node import Node
from mesh.room import RoomEvent, RoomState, fold
from mesh.senderkey import new_chain_key
from mesh.store import Store

MAX_NAME = 100


class Rooms:
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

    def _now_ms(self) -> int:
        return int(self.node.clock() * 1000)

    def resolve(self, name: str) -> str:
        """A room by id, unambiguous id prefix, or name."""
        name = name.strip()
        rows = self.store.query(
            "SELECT conv_id FROM conversations WHERE kind = 'room' AND (conv_id = ? OR name = ?)",
            (name.lower(), name),
        )
        if len(rows) == 1:
            return str(rows[0]["conv_id"])
        if len(rows) > 1:
            raise UsageError(f"{len(rows)} rooms are called {name!r}; use the room id")
        rows = self.store.query(
            "SELECT conv_id FROM conversations WHERE kind = 'room' AND conv_id LIKE ?",
            (name.lower() + "%",),
        )
        if len(rows) == 1 and name:
            return str(rows[0]["conv_id"])
        if rows and name:
            raise UsageError(f"{name!r} matches {len(rows)} rooms; give more of the id")
        raise UsageError(f"no room matches {name!r}")

    # -- rooms -----------------------------------------------------------------------

    def state(self, conv_id: str) -> RoomState:
        """Who is in the room now (cached: the fold checks every event's signature).

        Callers must not change the state they get. It is cached only outside
        transactions, so an event whose transaction rolls back never sticks.
        """
        cached = self._states.get(conv_id)
        if cached is not None:
            return cached
        rows = self.store.query("SELECT signed FROM room_events WHERE conv_id = ?", (conv_id,))
        state = fold(decode_peer_id(conv_id), [RoomEvent.decode(r["signed"]) for r in rows])
        if not self.store.db.conn.in_transaction:
            self._states[conv_id] = state
        return state

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
        room_id = new_chain_key()  # 32 random bytes
        conv_id = encode_peer_id(room_id)
        event = RoomEvent.create(self.identity, room_id, "create", self._now_ms(), name=name)
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
        event = RoomEvent.create(self.identity, state.room_id, "invite", self._now_ms(), target=key)
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
        if key not in state.members and key not in state.invited:
            raise UsageError(f"{encode_peer_id(key)[:8]} is not in the room")
        if key == self.identity.public_key:
            raise UsageError("the admin cannot remove itself")
        event = RoomEvent.create(self.identity, state.room_id, "remove", self._now_ms(), target=key)
        now = self.node.clock()
        with self.store.atomic():
            self._store_event(conv_id, event)
            # the removed peer learns it was removed; nothing sent later is readable to it
            self._broadcast_event(state, event, now)
            after = self.state(conv_id)
            self._new_document_key(conv_id, after.epoch, after.members, now)
        self.wake()
        return {"room_id": conv_id, "removed": encode_peer_id(key), "epoch": state.epoch + 1}

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
            raise UsageError("the admin cannot leave the room")
        event = RoomEvent.create(self.identity, state.room_id, "leave", self._now_ms())
        with self.store.atomic():
            self._store_event(conv_id, event)
            self._broadcast_event(state, event, self.node.clock())
        self.wake()
        return {"room_id": conv_id, "state": "left"}

    def _join(self, conv_id: str, state: RoomState, now: float) -> None:
        event = RoomEvent.create(
            self.identity, state.room_id, "join", self._now_ms(), target=self.identity.public_key
        )
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
            raise ChatError("control message without a room")
        conv_id = encode_peer_id(room_id)
        now = self.node.clock()
        if kind == "invite":
            signed = body.get("events")
            if not isinstance(signed, list) or len(signed) > 10_000:
                raise ChatError("malformed invitation")
            events = [RoomEvent.decode(s) for s in signed if isinstance(s, bytes)]
            state = fold(room_id, events)
            if state.admin != sender or self.identity.public_key not in state.invited:
                raise ChatError("invitation not from the admin, or not for us")
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
            if self.conversation(conv_id) is None:
                raise ChatError("event for an unknown room")
            event = RoomEvent.decode(body.get("event", b""))
            if event.room_id != room_id:
                raise ChatError("event for another room")
            before = self.state(conv_id)
            with self.store.atomic():
                added = self._store_event(conv_id, event)
            after = self.state(conv_id)
            # the admin passes every new event on, so that members who joined at the same
            # time learn of each other
            if added and after.admin == self.identity.public_key and event.author != after.admin:
                with self.store.atomic():
                    self._broadcast_event(before, event, now, skip=frozenset({event.author}))
                    if event.kind == "join" and event.author in after.members:
                        self._send_events(conv_id, event.author, now)
                        self._send_document_keys(conv_id, event.author, now)
                    if after.epoch != before.epoch:
                        self._new_document_key(conv_id, after.epoch, after.members, now)
                self.wake()
            self.emit("room", {"room_id": conv_id, "event": event.kind})
            return conv_id
        if kind == "dockeys":
            return self._receive_document_keys(sender, conv_id, body.get("keys"))
        raise ChatError(f"unknown control kind {kind!r}")

    # -- document keys -------------------------------------------------------------

    def document_key(self, conv_id: str, epoch: int) -> bytes | None:
        """The room's document key of `epoch` (for notes), if this peer holds it."""
        rows = self.store.query(
            "SELECT key FROM doc_keys WHERE conv_id = ? AND epoch = ?", (conv_id, epoch)
        )
        return bytes(rows[0]["key"]) if rows else None

    def _new_document_key(self, conv_id: str, epoch: int, members: set[bytes], now: float) -> None:
        """The admin starts an epoch's document key and gives it to the members."""
        self.store.execute(
            "INSERT OR IGNORE INTO doc_keys (conv_id, epoch, key) VALUES (?, ?, ?)",
            (conv_id, epoch, new_chain_key()),
        )
        for member in members - {self.identity.public_key}:
            self._send_document_keys(conv_id, member, now, only_epoch=epoch)

    def _send_document_keys(
        self, conv_id: str, peer: bytes, now: float, only_epoch: int | None = None
    ) -> None:
        """Box the room's document keys (all epochs: history stays readable) for a member."""
        rows = self.store.query("SELECT epoch, key FROM doc_keys WHERE conv_id = ?", (conv_id,))
        keys = [
            [r["epoch"], bytes(r["key"])]
            for r in rows
            if only_epoch is None or r["epoch"] == only_epoch
        ]
        if keys:
            room_id = decode_peer_id(conv_id)
            self.send_control(peer, {"k": "dockeys", "room": room_id, "keys": keys}, now)

    def _receive_document_keys(self, sender: bytes, conv_id: str, keys: object) -> str:
        state = self.state(conv_id)
        if state.admin != sender or self.identity.public_key not in state.members:
            raise ChatError("document keys not from the admin, or not for a member")
        valid = isinstance(keys, list) and all(
            isinstance(pair, list)
            and len(pair) == 2
            and isinstance(pair[0], int)
            and 0 <= pair[0] < 2**32
            and isinstance(pair[1], bytes)
            and len(pair[1]) == 32
            for pair in keys
        )
        if not valid or not isinstance(keys, list):
            raise ChatError("malformed document keys")
        with self.store.atomic():
            for epoch, key in keys:
                self.store.execute(
                    "INSERT OR IGNORE INTO doc_keys (conv_id, epoch, key) VALUES (?, ?, ?)",
                    (conv_id, epoch, key),
                )
        self.emit("dockeys", {"room_id": conv_id, "epochs": sorted(e for e, _ in keys)})
        return conv_id

    def _send_events(self, conv_id: str, peer: bytes, now: float) -> None:
        state = self.state(conv_id)
        for event in state.applied:
            self.send_control(
                peer, {"k": "event", "room": state.room_id, "event": event.signed}, now
            )
