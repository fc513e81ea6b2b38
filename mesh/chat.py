"""Chat: direct conversations and rooms, end-to-end encrypted, delivered even to peers offline.

The Python API the command line and the terminal UI use. A direct
conversation is a room of two whose id both sides derive from their keys; a
room has a membership chain (:mod:`mesh.room`). Content is sealed once with
the author's sender key (:mod:`mesh.senderkey`) and sent to each other member
in its own envelope; until a member has receipted something from the
author's current chain, that envelope also carries the chain key, boxed
pairwise (crypto_box between the two X25519 keys). Control traffic (invites,
membership events) is boxed pairwise. Everything goes through the outbox
(:mod:`mesh.outbox`) and counts as delivered when its receipt arrives.

Payloads (msgpack):

    CHAT     [conv_id, epoch, index, sealed_content, boxed_key_share or None]
    content  {"id": msg_id, "t": text, "ts": ts_ms, "s": seq}
    share    [conv_id, epoch, chain_key, index]
    CONTROL  box({"k": "invite", "room": id, "events": [...]} | {"k": "event", ...})
    RECEIPT  the acknowledged envelope ids, 32 bytes each (plaintext: relays read it)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import msgpack
import nacl.exceptions
import nacl.public

from mesh.envelope import DestKind, Envelope, EnvelopeType
from mesh.errors import ChatError, MeshError, PeerNameError, UsageError
from mesh.identity import decode_peer_id, encode_peer_id, safety_number
from mesh.node import Node
from mesh.outbox import MAX_RECEIPT_IDS, Outbox
from mesh.room import RoomEvent, RoomState, fold
from mesh.senderkey import Chain, associated_data, message_key, new_chain_key, open_sealed, seal
from mesh.store import Store

log = logging.getLogger("meshnotes.chat")

MAX_TEXT = 16_000
MAX_PENDING = 1000
MAX_NAME = 100

Listener = Callable[[str, dict[str, Any]], None]


def dm_conversation_id(key_a: bytes, key_b: bytes) -> bytes:
    """The id both peers of a direct conversation derive, without talking."""
    low, high = sorted((key_a, key_b))
    return hashlib.blake2b(low + high, digest_size=32, person=b"mn-dm-v1").digest()


class Chat:
    """Chat on one node, kept in its store. Methods raise MeshError subclasses for bad input."""

    def __init__(self, node: Node, store: Store) -> None:
        self.node = node
        self.store = store
        self.identity = node.identity
        self.me = node.identity.peer_id
        self.outbox = Outbox(store, node.router.make, node.send, rng=node.rng)
        self.counters: dict[str, int] = {}
        self.listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        node.on_deliver(EnvelopeType.CHAT, self._on_chat)
        node.on_deliver(EnvelopeType.CONTROL, self._on_control)
        node.on_deliver(EnvelopeType.RECEIPT, self._on_receipt)
        node.on_link_up(self._on_link_up)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._retry_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _retry_loop(self) -> None:
        while True:
            try:
                self.outbox.flush(self.node.clock())
            except MeshError as exc:
                log.warning("outbox flush failed: %s", exc)
            due = self.outbox.next_due()
            delay = 5.0 if due is None else min(5.0, max(0.05, due - self.node.clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _on_link_up(self, peer: bytes) -> None:
        self.outbox.make_all_due(self.node.clock())
        self._wake.set()

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(kind, data)

    # -- names -------------------------------------------------------------------

    def resolve_peer(self, name: str) -> bytes:
        """A peer by contact nickname, full id, or unambiguous id prefix of anyone known."""
        name = name.strip()
        rows = self.store.query("SELECT peer_id FROM contacts WHERE name = ?", (name,))
        if rows:
            return decode_peer_id(rows[0]["peer_id"])
        with contextlib.suppress(UsageError):
            return decode_peer_id(name)
        lowered = name.lower()
        if not lowered:
            raise PeerNameError("empty peer name")
        known = {encode_peer_id(k) for k in self.node.known_peers()}
        for table, column in (("contacts", "peer_id"), ("conversations", "peer_id")):
            known.update(
                r[column]
                for r in self.store.query(f"SELECT {column} FROM {table}")
                if r[column] is not None
            )
        matches = sorted(p for p in known if p.startswith(lowered))
        if len(matches) == 1:
            return decode_peer_id(matches[0])
        if not matches:
            raise PeerNameError(f"no contact or known peer matches {name!r}")
        raise PeerNameError(f"{name!r} matches {len(matches)} peers; give more of the id")

    def resolve_room(self, name: str) -> str:
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

    def resolve_conversation(self, name: str) -> str:
        """A room (id, prefix, name) or a peer's direct conversation (nickname, id, prefix)."""
        try:
            return self.resolve_room(name)
        except UsageError as room_error:
            try:
                peer = self.resolve_peer(name)
            except PeerNameError:
                raise UsageError(f"no room or peer matches {name!r}") from room_error
            return encode_peer_id(dm_conversation_id(self.identity.public_key, peer))

    # -- contacts ------------------------------------------------------------------

    def add_contact(self, peer: str, name: str | None = None) -> dict[str, Any]:
        key = self.resolve_peer(peer)
        if key == self.identity.public_key:
            raise UsageError("you cannot add yourself as a contact")
        if name is not None and not 0 < len(name.strip()) <= MAX_NAME:
            raise UsageError(f"a nickname has 1..{MAX_NAME} characters")
        peer_id = encode_peer_id(key)
        taken = self.store.query(
            "SELECT peer_id FROM contacts WHERE name = ? AND peer_id != ?", (name, peer_id)
        )
        if name and taken:
            raise UsageError(f"the nickname {name!r} is taken by {taken[0]['peer_id'][:8]}")
        with self.store.atomic():
            self.store.execute(
                "INSERT INTO contacts (peer_id, name, verified, added_at) VALUES (?, ?, 0, ?)"
                " ON CONFLICT(peer_id) DO UPDATE SET name = COALESCE(excluded.name, name)",
                (peer_id, name.strip() if name else None, self.node.clock()),
            )
            # a direct conversation that was a request becomes a normal one
            self.store.execute(
                "UPDATE conversations SET state = 'active' WHERE kind = 'dm' AND peer_id = ?",
                (peer_id,),
            )
        return self.contact(peer_id)

    def verify_contact(self, peer: str, verified: bool = True) -> dict[str, Any]:
        peer_id = encode_peer_id(self.resolve_peer(peer))
        if not self.store.execute(
            "UPDATE contacts SET verified = ? WHERE peer_id = ?", (int(verified), peer_id)
        ):
            raise UsageError(f"{peer_id[:8]} is not a contact; add it first")
        return self.contact(peer_id)

    def contact(self, peer_id: str) -> dict[str, Any]:
        row = self.store.query("SELECT * FROM contacts WHERE peer_id = ?", (peer_id,))[0]
        return self._contact_view(row)

    def contacts(self) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT * FROM contacts ORDER BY name, peer_id")
        return [self._contact_view(row) for row in rows]

    def _contact_view(self, row: dict[str, Any]) -> dict[str, Any]:
        key = decode_peer_id(row["peer_id"])
        return {
            "peer_id": row["peer_id"],
            "name": row["name"],
            "verified": bool(row["verified"]),
            "safety_number": safety_number(self.identity.public_key, key),
        }

    def is_contact(self, peer_id: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM contacts WHERE peer_id = ?", (peer_id,)))

    # -- rooms -----------------------------------------------------------------------

    def room_state(self, conv_id: str) -> RoomState:
        rows = self.store.query("SELECT signed FROM room_events WHERE conv_id = ?", (conv_id,))
        return fold(decode_peer_id(conv_id), [RoomEvent.decode(r["signed"]) for r in rows])

    def _conversation(self, conv_id: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT * FROM conversations WHERE conv_id = ?", (conv_id,))
        return rows[0] if rows else None

    def new_room(self, name: str) -> str:
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
        return conv_id

    def invite(self, room: str, peer: str) -> dict[str, Any]:
        conv_id = self.resolve_room(room)
        key = self.resolve_peer(peer)
        state = self.room_state(conv_id)
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
            self._queue_control(key, {"k": "invite", "room": state.room_id, "events": events}, now)
            self._broadcast_event(state, event, now, skip=frozenset({key}))
        self._wake.set()
        return {"room_id": conv_id, "invited": encode_peer_id(key)}

    def remove(self, room: str, peer: str) -> dict[str, Any]:
        conv_id = self.resolve_room(room)
        key = self.resolve_peer(peer)
        state = self.room_state(conv_id)
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
        self._wake.set()
        return {"room_id": conv_id, "removed": encode_peer_id(key), "epoch": state.epoch + 1}

    def join(self, room: str) -> dict[str, Any]:
        """Accept a pending invitation."""
        conv_id = self.resolve_room(room)
        state = self.room_state(conv_id)
        if self.identity.public_key in state.members:
            raise UsageError("you are already a member")
        if self.identity.public_key not in state.invited:
            raise UsageError("you have no pending invitation to that room")
        self._join(conv_id, state, self.node.clock())
        self._wake.set()
        return {"room_id": conv_id, "state": "joined"}

    def _join(self, conv_id: str, state: RoomState, now: float) -> None:
        event = RoomEvent.create(
            self.identity, state.room_id, "join", self._now_ms(), target=self.identity.public_key
        )
        with self.store.atomic():
            self._store_event(conv_id, event)
            self._broadcast_event(state, event, now)

    def rooms(self) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT * FROM conversations WHERE kind = 'room' ORDER BY name, conv_id"
        )
        result = []
        for row in rows:
            state = self.room_state(row["conv_id"])
            result.append({
                "room_id": row["conv_id"],
                "name": row["name"],
                "state": row["state"],
                "epoch": state.epoch,
                "admin": encode_peer_id(state.admin) if state.admin else None,
                "members": sorted(encode_peer_id(m) for m in state.members),
                "invited": sorted(encode_peer_id(m) for m in state.invited),
                "invited_by": row["invited_by"],
            })  # fmt: skip
        return result

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation (rooms and direct ones), with unread-free summary fields."""
        rows = self.store.query("SELECT * FROM conversations ORDER BY kind, name, conv_id")
        return [
            {"conv_id": r["conv_id"], "kind": r["kind"], "name": r["name"],
             "peer_id": r["peer_id"], "state": r["state"]}
            for r in rows
        ]  # fmt: skip

    def _store_event(self, conv_id: str, event: RoomEvent) -> bool:
        """Store an event (in the caller's transaction) and refresh the conversation's state."""
        added = self.store.execute(
            "INSERT OR IGNORE INTO room_events"
            " (event_id, conv_id, author, kind, target, ts, signed) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.event_id.hex(), conv_id, encode_peer_id(event.author), event.kind,
             encode_peer_id(event.target) if event.target else None, event.ts, event.signed),
        )  # fmt: skip
        state = self.room_state(conv_id)
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
            self._queue_control(
                peer, {"k": "event", "room": state.room_id, "event": event.signed}, now
            )

    # -- sending -------------------------------------------------------------------

    def send_direct(self, peer: str, text: str) -> str:
        """Send `text` to a peer in your direct conversation; return the message id."""
        key = self.resolve_peer(peer)
        if key == self.identity.public_key:
            raise UsageError("you cannot message yourself")
        conv_id = self._ensure_dm(key, active=True)
        return self._send_content(conv_id, 0, [key], text)

    def say(self, room: str, text: str) -> str:
        """Send `text` to a room; return the message id."""
        conv_id = self.resolve_room(room)
        state = self.room_state(conv_id)
        if self.identity.public_key not in state.members:
            raise UsageError("you are not a member of that room")
        others = sorted(state.members - {self.identity.public_key})
        return self._send_content(conv_id, state.epoch, others, text)

    def _ensure_dm(self, peer: bytes, active: bool) -> str:
        conv_id = encode_peer_id(dm_conversation_id(self.identity.public_key, peer))
        peer_id = encode_peer_id(peer)
        state = "active" if active or self.is_contact(peer_id) else "request"
        self.store.execute(
            "INSERT INTO conversations (conv_id, kind, peer_id, state, epoch, created_at)"
            " VALUES (?, 'dm', ?, ?, 0, ?) ON CONFLICT(conv_id) DO UPDATE SET state ="
            " CASE WHEN excluded.state = 'active' THEN 'active' ELSE state END",
            (conv_id, peer_id, state, self.node.clock()),
        )
        return conv_id

    def _send_content(self, conv_id: str, epoch: int, recipients: list[bytes], text: str) -> str:
        if not text.strip():
            raise UsageError("the message is empty")
        if len(text) > MAX_TEXT:
            raise UsageError(f"the message has {len(text)} characters; at most {MAX_TEXT}")
        now = self.node.clock()
        conv = decode_peer_id(conv_id)
        with self.store.atomic():
            seq = self.store.next_counter("chat_seq")
            ts = int(now * 1000)
            msg_id = hashlib.blake2b(
                self.identity.public_key + conv + seq.to_bytes(8, "big") + ts.to_bytes(8, "big"),
                digest_size=16,
            ).hexdigest()
            chain = self._chain(conv_id, epoch, self.me) or Chain(new_chain_key(), 0)
            key, after = chain.advance()
            self._save_chain(conv_id, epoch, self.me, after)
            content = msgpack.packb({"id": msg_id, "t": text, "ts": ts, "s": seq})
            aad = associated_data(conv, epoch, chain.index, self.identity.public_key)
            sealed = seal(key, content, aad)
            status = "pending" if recipients else "delivered"
            self.store.execute(
                "INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status, stored_at,"
                " epoch, idx) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (msg_id, conv_id, self.me, text, ts, seq, status, now, epoch, chain.index),
            )
            for peer in recipients:
                peer_id = encode_peer_id(peer)
                share = None
                if not self.store.query(
                    "SELECT 1 FROM key_acks WHERE conv_id = ? AND epoch = ? AND peer_id = ?",
                    (conv_id, epoch, peer_id),
                ):
                    share = self._box(peer, msgpack.packb([conv, epoch, chain.chain_key,
                                                            chain.index]))  # fmt: skip
                payload = msgpack.packb([conv, epoch, chain.index, sealed, share])
                self.store.execute(
                    "INSERT INTO recipients (msg_id, peer_id) VALUES (?, ?)", (msg_id, peer_id)
                )
                self.outbox.add(
                    f"{msg_id}:{peer_id}", peer_id, EnvelopeType.CHAT, payload, now,
                    msg_id=msg_id, conv_id=conv_id, epoch=epoch,
                )  # fmt: skip
        # committed: now it may be shown as sent, and go out
        self._emit("message", self._message_view(self._message(msg_id)))
        self.outbox.flush(now)
        return msg_id

    def _queue_control(self, peer: bytes, body: dict[str, Any], now: float) -> None:
        payload = self._box(peer, msgpack.packb(body))
        item_id = hashlib.blake2b(payload, digest_size=16).hexdigest()
        self.outbox.add(item_id, encode_peer_id(peer), EnvelopeType.CONTROL, payload, now)

    def _box(self, peer: bytes, plaintext: bytes) -> bytes:
        box = nacl.public.Box(
            nacl.public.PrivateKey(self.identity.x25519_private_key),
            nacl.public.PublicKey(_x25519(peer)),
        )
        return bytes(box.encrypt(plaintext))

    def _unbox(self, peer: bytes, ciphertext: bytes) -> bytes:
        try:
            box = nacl.public.Box(
                nacl.public.PrivateKey(self.identity.x25519_private_key),
                nacl.public.PublicKey(_x25519(peer)),
            )
            return bytes(box.decrypt(ciphertext))
        except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
            raise ChatError("a pairwise box failed to open") from exc

    # -- receiving -------------------------------------------------------------------

    def _on_chat(self, envelope: Envelope) -> None:
        try:
            delivered = self._receive_chat(envelope)
        except ChatError as exc:
            self._count(f"chat_rejected_{_reason(exc)}")
            log.info("chat message rejected from %s: %s", encode_peer_id(envelope.author), exc)
            return
        except MeshError as exc:
            self._count("chat_store_error")
            log.warning("chat message not stored: %s", exc)
            return
        if delivered:
            self._send_receipt(envelope.author, [envelope.message_id])

    def _receive_chat(self, envelope: Envelope) -> bool:
        """Decrypt and store one CHAT envelope; return whether to receipt it.

        A message whose key or room is not known yet waits in `pending`
        (bounded) and is tried again when the room changes.
        """
        try:
            conv, epoch, index, sealed, share = msgpack.unpackb(envelope.payload)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError("malformed chat payload") from exc
        if not (
            isinstance(conv, bytes)
            and len(conv) == 32
            and isinstance(epoch, int)
            and isinstance(index, int)
            and 0 <= epoch < 2**32
            and 0 <= index < 2**32
            and isinstance(sealed, bytes)
            and (share is None or isinstance(share, bytes))
        ):
            raise ChatError("malformed chat payload")  # fmt: skip
        author = envelope.author
        author_id = encode_peer_id(author)
        conv_id = encode_peer_id(conv)
        if self.store.query(
            "SELECT 1 FROM messages WHERE conv_id = ? AND author = ? AND epoch = ? AND idx = ?",
            (conv_id, author_id, epoch, index),
        ):
            self._count("chat_duplicate")
            return True  # receipt again: the first receipt may have been lost
        is_dm = conv == dm_conversation_id(self.identity.public_key, author)
        if not is_dm:
            state = self.room_state(conv_id) if self._conversation(conv_id) else None
            if state is None or author not in state.members:
                if state is not None and author in state.departed:
                    raise ChatError("sender is not a member of the room")
                self._hold(envelope, conv_id)
                return False
            if self.identity.public_key not in state.members:
                raise ChatError("not a member of the room")
        now = self.node.clock()
        with self.store.atomic():
            if is_dm:
                conv_id = self._ensure_dm(author, active=False)
            key = self._message_key(conv, conv_id, epoch, author, author_id, index, share)
            if key is None:
                self._hold(envelope, conv_id)
                return False
            aad = associated_data(conv, epoch, index, author)
            content = msgpack.unpackb(open_sealed(key, sealed, aad))
            if not (
                isinstance(content, dict)
                and isinstance(content.get("t"), str)
                and isinstance(content.get("id"), str)
                and isinstance(content.get("ts"), int)
                and isinstance(content.get("s"), int)
                and len(content["t"]) <= MAX_TEXT
                and len(content["id"]) <= 64
            ):
                raise ChatError("malformed chat content")  # fmt: skip
            added = self.store.execute(
                "INSERT OR IGNORE INTO messages (msg_id, conv_id, author, text, ts, seq, status,"
                " stored_at, epoch, idx) VALUES (?,?,?,?,?,?,'received',?,?,?)",
                (content["id"], conv_id, author_id, content["t"], content["ts"], content["s"],
                 now, epoch, index),
            )  # fmt: skip
            self.store.execute("DELETE FROM pending WHERE env_id = ?", (envelope.message_id.hex(),))
        if added:
            self._count("chat_received")
            self._emit("message", self._message_view(self._message(content["id"])))
        else:
            self._count("chat_duplicate")
        return True

    def _message_key(
        self, conv: bytes, conv_id: str, epoch: int, author: bytes, author_id: str,
        index: int, share: bytes | None,
    ) -> bytes | None:  # fmt: skip
        """The key of message `index` of the author's chain, advancing it; None if unknown yet."""
        shared: Chain | None = None
        if share is not None:
            try:
                s_conv, s_epoch, s_key, s_index = msgpack.unpackb(self._unbox(author, share))
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise ChatError("malformed key share") from exc
            if (
                s_conv != conv
                or s_epoch != epoch
                or not isinstance(s_key, bytes)
                or len(s_key) != 32
                or not isinstance(s_index, int)
                or s_index > index
            ):
                raise ChatError("key share does not match its message")  # fmt: skip
            shared = Chain(s_key, s_index)
        chain = self._chain(conv_id, epoch, author_id) or shared
        if chain is None:
            return None
        if index >= chain.index:
            key, after, skipped = chain.key_for(index)
            self._save_chain(conv_id, epoch, author_id, after)
            for i, k in skipped.items():
                self.store.execute(
                    "INSERT OR IGNORE INTO skipped_keys (conv_id, epoch, peer_id, idx, message_key)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (conv_id, epoch, author_id, i, k),
                )
            return key
        rows = self.store.query(
            "SELECT message_key FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?"
            " AND idx = ?",
            (conv_id, epoch, author_id, index),
        )
        if rows:
            self.store.execute(
                "DELETE FROM skipped_keys WHERE conv_id = ? AND epoch = ? AND peer_id = ?"
                " AND idx = ?",
                (conv_id, epoch, author_id, index),
            )
            return bytes(rows[0]["message_key"])
        if shared is not None and shared.index == index:
            return message_key(shared.chain_key)  # arrived after a later one that set the chain
        raise ChatError("message key already used (replayed) or too old")

    def _hold(self, envelope: Envelope, conv_id: str) -> None:
        count = self.store.query("SELECT COUNT(*) AS n FROM pending")[0]["n"]
        if count >= MAX_PENDING:
            self._count("chat_dropped_pending_full")
            return
        self.store.execute(
            "INSERT OR IGNORE INTO pending (env_id, conv_id, envelope, received_at)"
            " VALUES (?, ?, ?, ?)",
            (envelope.message_id.hex(), conv_id, envelope.encode(), self.node.clock()),
        )
        self._count("chat_held")

    def _retry_pending(self, conv_id: str) -> None:
        for row in self.store.query("SELECT envelope FROM pending WHERE conv_id = ?", (conv_id,)):
            self.store.execute(
                "DELETE FROM pending WHERE env_id = ?",
                (Envelope.decode(row["envelope"]).message_id.hex(),),
            )
            self._on_chat(Envelope.decode(row["envelope"]))

    def _on_control(self, envelope: Envelope) -> None:
        try:
            body = msgpack.unpackb(self._unbox(envelope.author, envelope.payload))
            if not isinstance(body, dict):
                raise ChatError("malformed control message")
            conv_id = self._handle_control(envelope.author, body)
        except ChatError as exc:
            self._count(f"control_rejected_{_reason(exc)}")
            log.info("control message rejected: %s", exc)
            return
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            self._count("control_rejected_malformed")
            return
        self._send_receipt(envelope.author, [envelope.message_id])
        if conv_id is not None:
            self._retry_pending(conv_id)

    def _handle_control(self, sender: bytes, body: dict[str, Any]) -> str | None:
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
            state = self.room_state(conv_id)
            self._emit("invite", {"room_id": conv_id, "name": state.name,
                                  "from": encode_peer_id(sender)})  # fmt: skip
            invited = self.identity.public_key in state.invited
            if invited and self.is_contact(encode_peer_id(sender)):
                self._join(conv_id, state, now)
                self._wake.set()
            return conv_id
        if kind == "event":
            if self._conversation(conv_id) is None:
                raise ChatError("event for an unknown room")
            event = RoomEvent.decode(body.get("event", b""))
            if event.room_id != room_id:
                raise ChatError("event for another room")
            before = self.room_state(conv_id)
            with self.store.atomic():
                added = self._store_event(conv_id, event)
            after = self.room_state(conv_id)
            # the admin passes every new event on, so that members who joined at the same
            # time learn of each other
            if added and after.admin == self.identity.public_key and event.author != after.admin:
                with self.store.atomic():
                    self._broadcast_event(before, event, now, skip=frozenset({event.author}))
                    if event.kind == "join":
                        self._send_history_of_events(conv_id, event.author, now)
                self._wake.set()
            self._emit("room", {"room_id": conv_id, "event": event.kind})
            return conv_id
        raise ChatError(f"unknown control kind {kind!r}")

    def _send_history_of_events(self, conv_id: str, peer: bytes, now: float) -> None:
        state = self.room_state(conv_id)
        for event in state.applied:
            self._queue_control(
                peer, {"k": "event", "room": state.room_id, "event": event.signed}, now
            )

    def _on_receipt(self, envelope: Envelope) -> None:
        try:
            done = self.outbox.acknowledge(envelope)
            with self.store.atomic():
                for item in done:
                    if item.type != EnvelopeType.CHAT or item.msg_id is None:
                        continue
                    self.store.execute(
                        "UPDATE recipients SET delivered_at = ? WHERE msg_id = ? AND peer_id = ?",
                        (self.node.clock(), item.msg_id, item.dest),
                    )
                    self.store.execute(
                        "INSERT OR IGNORE INTO key_acks (conv_id, epoch, peer_id) VALUES (?,?,?)",
                        (item.conv_id, item.epoch, item.dest),
                    )
                    self.store.execute(
                        "UPDATE messages SET status = 'delivered' WHERE msg_id = ? AND NOT EXISTS"
                        " (SELECT 1 FROM recipients WHERE msg_id = ? AND delivered_at IS NULL)",
                        (item.msg_id, item.msg_id),
                    )
        except MeshError as exc:
            self._count("receipt_store_error")
            log.warning("receipt not applied: %s", exc)
            return
        for item in done:
            if item.msg_id is not None:
                self._emit("status", self._message_view(self._message(item.msg_id)))

    def _send_receipt(self, dest: bytes, env_ids: list[bytes]) -> None:
        for start in range(0, len(env_ids), MAX_RECEIPT_IDS):
            receipt = self.node.router.make(
                EnvelopeType.RECEIPT, self.node.clock(), dest_kind=DestKind.PEER, dest=dest,
                payload=b"".join(env_ids[start : start + MAX_RECEIPT_IDS]),
            )  # fmt: skip
            self.node.send(receipt)

    # -- history -----------------------------------------------------------------------

    def history(self, conversation: str, limit: int = 50) -> list[dict[str, Any]]:
        """The last `limit` messages of a room or direct conversation, oldest first."""
        if not 1 <= limit <= 10_000:
            raise UsageError("--limit must be between 1 and 10000")
        conv_id = self.resolve_conversation(conversation)
        rows = self.store.query(
            "SELECT * FROM (SELECT * FROM messages WHERE conv_id = ?"
            " ORDER BY ts DESC, author DESC, seq DESC LIMIT ?) ORDER BY ts, author, seq",
            (conv_id, limit),
        )
        return [self._message_view(row) for row in rows]

    def _message(self, msg_id: str) -> dict[str, Any]:
        return self.store.query("SELECT * FROM messages WHERE msg_id = ?", (msg_id,))[0]

    def _message_view(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["msg_id"], "conv_id": row["conv_id"], "author": row["author"],
            "text": row["text"], "ts": row["ts"], "status": row["status"],
        }  # fmt: skip

    # -- keys -----------------------------------------------------------------------------

    def _chain(self, conv_id: str, epoch: int, peer_id: str) -> Chain | None:
        rows = self.store.query(
            "SELECT chain_key, idx FROM chains WHERE conv_id = ? AND epoch = ? AND peer_id = ?",
            (conv_id, epoch, peer_id),
        )
        return Chain(bytes(rows[0]["chain_key"]), int(rows[0]["idx"])) if rows else None

    def _save_chain(self, conv_id: str, epoch: int, peer_id: str, chain: Chain) -> None:
        self.store.execute(
            "INSERT OR REPLACE INTO chains (conv_id, epoch, peer_id, chain_key, idx)"
            " VALUES (?, ?, ?, ?, ?)",
            (conv_id, epoch, peer_id, chain.chain_key, chain.index),
        )

    def _now_ms(self) -> int:
        return int(self.node.clock() * 1000)

    def status(self) -> dict[str, Any]:
        return {
            "outbox": self.outbox.pending_count(),
            "pending_decrypt": self.store.query("SELECT COUNT(*) AS n FROM pending")[0]["n"],
            "counters": dict(sorted(self.counters.items())),
        }


def _x25519(ed25519_public: bytes) -> bytes:
    import nacl.bindings

    try:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519_public)
    except (nacl.exceptions.CryptoError, ValueError, RuntimeError) as exc:
        raise ChatError("not a valid peer key") from exc


def _reason(exc: ChatError) -> str:
    text = str(exc)
    for word, reason in (("replayed", "replayed"), ("authentication", "tampered"),
                         ("member", "not_member"), ("malformed", "malformed"),
                         ("key share", "bad_key_share"), ("box", "bad_box"),
                         ("signature", "bad_signature")):  # fmt: skip
        if word in text:
            return reason
    return "other"
