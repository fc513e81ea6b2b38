"""Chat: direct conversations and rooms, end-to-end encrypted, delivered even to peers offline.

The Python API the command line and the terminal UI use. A direct
conversation is a room of two whose id both sides derive from their keys; a
room has a membership chain (:mod:`chat.room`). Content is sealed once with
the author's sender key (:mod:`chat.senderkey`) and sent to each other member
in its own envelope; until a member has receipted something from the
author's current chain, that envelope also carries the chain key, boxed
pairwise (crypto_box between the two X25519 keys). Control traffic (invites,
membership events) is boxed pairwise. Everything goes through the outbox
(:mod:`chat.outbox`) and counts as delivered when its receipt arrives.

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
from typing import Any

import msgpack

from chat import history
from chat.contacts import Contacts
from chat.keystore import KeyStore
from chat.outbox import MAX_RECEIPT_IDS, Outbox
from chat.pairwise import box, unbox
from chat.pending import Pending
from chat.rooms import Rooms
from chat.senderkey import Chain, associated_data, new_chain_key, open_sealed, seal
from mesh.errors import ChatError, MeshError, PeerNameError, UsageError
from mesh.routing.replay import ReplayGuard
from mesh.runtime.addressbook import announced_name
from mesh.runtime.listeners import Listeners
from mesh.runtime.node import Node
from mesh.storage.store import Store
from mesh.wire.envelope import FLAG_FLOOD, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

log = logging.getLogger("meshnotes.chat")

MAX_TEXT = 16_000


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
        self.contacts = Contacts(node, store)
        self.keys = KeyStore(store)
        self.rooms = Rooms(
            node, store, self.contacts, self._queue_control, self._emit, self._wake_up
        )
        self.counters: dict[str, int] = {}
        #: envelopes receipted lately: a replay of one is receipted again once per interval
        self.receipted = ReplayGuard()
        self.listeners = Listeners(log, self.counters)
        self.pending = Pending(store, self.counters)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        node.on_deliver(EnvelopeType.CHAT, self._on_chat)
        node.on_deliver(EnvelopeType.CONTROL, self._on_control)
        node.on_deliver(EnvelopeType.RECEIPT, self._on_receipt)
        node.on_deliver(EnvelopeType.ADDRESS, self._on_address)
        node.on_link_up(self._on_link_up)
        node.set_room_interests(self.rooms.joined)  # inventories ask for our rooms' logs

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
                self.pending.expire(self.node.clock())
            except MeshError as exc:
                log.warning("outbox flush failed: %s", exc)
            due = self.outbox.next_due()
            delay = 5.0 if due is None else min(5.0, max(0.05, due - self.node.clock()))
            self._wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancel of stop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _on_link_up(self, peer: bytes) -> None:
        self.outbox.make_all_due(self.node.clock())
        self._wake.set()

    def _wake_up(self) -> None:
        """Send what was just queued now, and let the retry loop pick up the new schedule."""
        self.outbox.flush(self.node.clock())
        self._wake.set()

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        self.listeners.emit(kind, data)

    # -- names -------------------------------------------------------------------

    def resolve_conversation(self, name: str) -> str:
        """A room (id, prefix, name) or a peer's direct conversation (nickname, id, prefix)."""
        try:
            return self.rooms.resolve(name)
        except UsageError as room_error:
            try:
                peer = self.contacts.resolve(name)
            except PeerNameError:
                raise UsageError(f"no room or peer matches {name!r}") from room_error
            return encode_peer_id(dm_conversation_id(self.contacts.own_key, peer))

    # -- sending -------------------------------------------------------------------

    def send_direct(self, peer: str, text: str) -> str:
        """Send `text` to a peer in your direct conversation; return the message id."""
        key = self.contacts.resolve(peer)
        if key == self.identity.public_key:
            raise UsageError("you cannot message yourself")
        conv_id = self._ensure_dm(key, active=True)
        return self._send_content(conv_id, 0, [key], text)

    def direct_conversation(self, peer: str) -> str:
        """The id of your direct conversation with a peer (started if new)."""
        key = self.contacts.resolve(peer)
        if key == self.identity.public_key:
            raise UsageError("you cannot message yourself")
        return self._ensure_dm(key, active=True)

    def say(self, room: str, text: str) -> str:
        """Send `text` to a room; return the message id."""
        conv_id = self.rooms.resolve(room)
        state = self.rooms.state(conv_id)
        if self.identity.public_key not in state.members:
            raise UsageError("you are not a member of that room")
        others = sorted(state.members - {self.identity.public_key})
        return self._send_content(conv_id, state.epoch, others, text)

    def _ensure_dm(self, peer: bytes, active: bool) -> str:
        conv_id = encode_peer_id(dm_conversation_id(self.identity.public_key, peer))
        peer_id = encode_peer_id(peer)
        state = "active" if active or self.contacts.is_contact(peer_id) else "request"
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
            chain = self.keys.chain(conv_id, epoch, self.me) or Chain(new_chain_key(), 0)
            key, after = chain.advance()
            self.keys.save(conv_id, epoch, self.me, after)
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
                    share = box(
                        self.identity,
                        peer,
                        msgpack.packb([conv, epoch, chain.chain_key, chain.index]),
                    )
                payload = msgpack.packb([conv, epoch, chain.index, sealed, share])
                self.store.execute(
                    "INSERT INTO recipients (msg_id, peer_id) VALUES (?, ?)", (msg_id, peer_id)
                )
                self.outbox.add(
                    f"{msg_id}:{peer_id}",
                    peer_id,
                    EnvelopeType.CHAT,
                    payload,
                    now,
                    msg_id=msg_id,
                    conv_id=conv_id,
                    epoch=epoch,
                )
        # committed: now it may be shown as sent, and go out
        self._emit("message", history.message(self.store, msg_id))
        self._wake_up()
        return msg_id

    def _queue_control(self, peer: bytes, body: dict[str, Any], now: float) -> None:
        payload = box(self.identity, peer, msgpack.packb(body))
        item_id = hashlib.blake2b(payload, digest_size=16).hexdigest()
        self.outbox.add(item_id, encode_peer_id(peer), EnvelopeType.CONTROL, payload, now)

    # -- receiving -------------------------------------------------------------------

    def _on_chat(self, envelope: Envelope) -> None:
        try:
            delivered = self._receive_chat(envelope)
        except ChatError as exc:
            self._count(f"chat_rejected_{exc.reason}")
            log.info("chat message rejected from %s: %s", encode_peer_id(envelope.author), exc)
            return
        except MeshError as exc:
            self._count("chat_store_error")
            log.warning("chat message not stored: %s", exc)
            return
        if delivered:
            self._send_receipt(envelope.author, [envelope.message_id], flood=envelope.flood)

    def _receive_chat(self, envelope: Envelope) -> bool:
        """Decrypt and store one CHAT envelope; return whether to receipt it.

        A message whose key or room is not known yet waits in `pending`
        (bounded) and is tried again when the room changes. A blocked author's
        is dropped unread (and not receipted).
        """
        if self.contacts.is_blocked(encode_peer_id(envelope.author)):
            raise ChatError("the sender is blocked", reason="blocked")
        try:
            conv, epoch, index, sealed, share = msgpack.unpackb(envelope.payload)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError("malformed chat payload", reason="malformed") from exc
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
            raise ChatError("malformed chat payload", reason="malformed")
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
            state = self.rooms.state(conv_id) if self.rooms.conversation(conv_id) else None
            if state is None or author not in state.members:
                if state is not None and author in state.departed:
                    raise ChatError("sender is not a member of the room", reason="not_member")
                self.pending.hold(envelope, conv_id, self.node.clock())
                return False
            if self.identity.public_key not in state.members:
                raise ChatError("not a member of the room", reason="not_member")
        now = self.node.clock()
        with self.store.atomic():
            if is_dm:
                conv_id = self._ensure_dm(author, active=False)
            shared = self._read_share(author, share, conv, epoch, index)
            key = self.keys.message_key(conv_id, epoch, author_id, index, shared)
            if key is None:
                self.pending.hold(envelope, conv_id, self.node.clock())
                return False
            aad = associated_data(conv, epoch, index, author)
            try:
                content = msgpack.unpackb(open_sealed(key, sealed, aad))
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                # authentic (the author holds the key) but not what a chat client writes
                raise ChatError("malformed chat content", reason="malformed") from exc
            if not (
                isinstance(content, dict)
                and isinstance(content.get("t"), str)
                and isinstance(content.get("id"), str)
                and isinstance(content.get("ts"), int)
                and isinstance(content.get("s"), int)
                and -(2**63) <= content["ts"] < 2**63  # SQLite INTEGER range
                and -(2**63) <= content["s"] < 2**63
                and len(content["t"]) <= MAX_TEXT
                and len(content["id"]) <= 64
            ):
                raise ChatError("malformed chat content", reason="malformed")
            added = self.store.execute(
                "INSERT OR IGNORE INTO messages (msg_id, conv_id, author, text, ts, seq, status,"
                " stored_at, epoch, idx) VALUES (?,?,?,?,?,?,'received',?,?,?)",
                (
                    content["id"],
                    conv_id,
                    author_id,
                    content["t"],
                    content["ts"],
                    content["s"],
                    now,
                    epoch,
                    index,
                ),
            )
            self.pending.forget(envelope)
        if added:
            self._count("chat_received")
            self._emit("message", history.message(self.store, content["id"]))
        else:
            self._count("chat_duplicate")
        return True

    def _read_share(
        self, author: bytes, share: bytes | None, conv: bytes, epoch: int, index: int
    ) -> Chain | None:
        """Open the chain key a message carries, and check it belongs to that message."""
        if share is None:
            return None
        try:
            s_conv, s_epoch, s_key, s_index = msgpack.unpackb(unbox(self.identity, author, share))
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError("malformed key share", reason="malformed") from exc
        valid = (
            s_conv == conv
            and s_epoch == epoch
            and isinstance(s_key, bytes)
            and len(s_key) == 32
            and isinstance(s_index, int)
            and 0 <= s_index <= index
        )
        if not valid:
            raise ChatError("key share does not match its message", reason="bad_key_share")
        return Chain(s_key, s_index)

    def _on_address(self, envelope: Envelope) -> None:
        """Keep the display name a peer announces in its signed address record."""
        name = announced_name(envelope)
        if name is None:
            return
        try:
            self.contacts.learn_name(encode_peer_id(envelope.author), name, envelope.timestamp_ms)
        except MeshError as exc:
            log.warning("announced name not kept: %s", exc)

    def _on_control(self, envelope: Envelope) -> None:
        try:
            if self.contacts.is_blocked(encode_peer_id(envelope.author)):
                raise ChatError("the sender is blocked", reason="blocked")
            body = msgpack.unpackb(unbox(self.identity, envelope.author, envelope.payload))
            if not isinstance(body, dict):
                raise ChatError("malformed control message", reason="malformed")
            conv_id = self.rooms.handle_control(envelope.author, body)
        except ChatError as exc:
            self._count(f"control_rejected_{exc.reason}")
            log.info("control message rejected: %s", exc)
            return
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            self._count("control_rejected_malformed")
            return
        self._send_receipt(envelope.author, [envelope.message_id], flood=envelope.flood)
        if conv_id is not None:
            for held in self.pending.take(conv_id):
                self._on_chat(held)

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
                self._emit("status", history.message(self.store, item.msg_id))

    def _send_receipt(self, dest: bytes, env_ids: list[bytes], flood: bool = False) -> None:
        """Receipt envelopes; flooded when the sender had to flood (its path is suspect:
        the receipt's way back may run through the same relay) or the path to it is.

        An envelope receipted less than REPLAY_INTERVAL ago is not receipted again:
        each replay of a captured message would otherwise cost a signed receipt."""
        now = self.node.clock()
        self.receipted.expire(now)
        fresh = [env_id for env_id in env_ids if self.receipted.allow(env_id, now)]
        if len(fresh) < len(env_ids):
            self._count("receipt_refused_replay")
        env_ids = fresh
        if self.outbox.path_suspect(encode_peer_id(dest), self.node.clock()):
            flood = True
        for start in range(0, len(env_ids), MAX_RECEIPT_IDS):
            receipt = self.node.router.make(
                EnvelopeType.RECEIPT,
                self.node.clock(),
                dest_kind=DestKind.PEER,
                dest=dest,
                payload=b"".join(env_ids[start : start + MAX_RECEIPT_IDS]),
                flags=FLAG_FLOOD if flood else 0,
            )
            self.node.send(receipt)

    # -- history -----------------------------------------------------------------------

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation (rooms and direct ones), with unread-free summary fields."""
        return history.conversations(self.store)

    def conversation(self, conv_id: str) -> dict[str, Any] | None:
        """One conversation by its exact id (as in :meth:`conversations`), or None."""
        return history.conversation(self.store, conv_id)

    def history(self, conversation: str, limit: int = 50) -> list[dict[str, Any]]:
        """The last `limit` messages of a room or direct conversation, oldest first."""
        if not 1 <= limit <= 10_000:
            raise UsageError("--limit must be between 1 and 10000")
        messages = history.last_messages(self.store, self.resolve_conversation(conversation), limit)
        blocked = self.contacts.blocked()
        if blocked:  # nothing from a blocked key is shown
            messages = [m for m in messages if m["author"] not in blocked]
        for m in messages:
            m["author_name"] = self.contacts.display_name(m["author"])
        return messages

    def status(self) -> dict[str, Any]:
        return {
            "outbox": self.outbox.pending_count(),
            "pending_decrypt": self.pending.count(),
            "counters": dict(
                sorted(
                    {
                        **self.counters,
                        "outbox_dropped_oversize": self.outbox.dropped_oversize,
                        "outbox_flooded_suspect": self.outbox.flooded_suspect,
                    }.items()
                )
            ),
        }
