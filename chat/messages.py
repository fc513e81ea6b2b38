"""Chat: direct conversations and rooms, end-to-end encrypted, delivered even to peers offline.

The Python API the command line and the terminal UI use (docs/chat.md). Room
content is sealed once with the author's sender key (:mod:`chat.senderkey`) and
sent to each other member in its own envelope, carrying the chain key sealed on
the pair's ratchet session (:mod:`chat.pairwise`) until that member receipts; a
direct message's content, and control traffic, go on the session itself. All of
it goes through the outbox (:mod:`chat.outbox`), delivered when receipted.

Payloads (msgpack):

    CHAT     [conv_id, epoch, index, sealed_content, sealed_key_share or None]
             (direct: [conv_id, 0, index, content sealed on the session, None])
    content  {"id": msg_id, "t": text, "ts": ts_ms, "s": seq, ...} (its kinds: chat.content)
    share    [conv_id, epoch, chain_key, index]
    CONTROL  sealed({"k": "invite", "room": id, "events": [...]} | {"k": "event", ...})
    RECEIPT  the acknowledged envelope ids, 32 bytes each (plaintext: relays read it)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
from typing import Any

import msgpack

from chat import history, unread
from chat.bundles import FIELD, Bundles, takes_bundles
from chat.contacts import Contacts
from chat.content import Content, check_text
from chat.inbox import Inbox
from chat.keystore import KeyStore
from chat.outbox import FLUSH_PAGE, Outbox, links_drained
from chat.pairwise import Pairwise
from chat.pending import Pending
from chat.reader import ChatReader, dm_conversation_id
from chat.receipts import Deferred
from chat.rooms import Rooms
from chat.senderkey import associated_data, seal
from chat.tables import MIGRATIONS, SHOWN_KINDS
from chat.timeline import Stored, Timeline
from mesh.errors import ChatError, MeshError, UsageError
from mesh.runtime.addressbook import announced_name
from mesh.runtime.listeners import Listeners
from mesh.runtime.node import Node
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

log = logging.getLogger("meshnotes.chat")

__all__ = ["Chat", "dm_conversation_id"]  # the direct conversation id is its reader's


class Chat(ChatReader):
    """Chat on one node, kept in its store. Methods raise MeshError subclasses for bad input."""

    def __init__(self, node: Node, store: Store) -> None:
        self.node = node
        self.store = store
        self.identity = node.identity
        self.me = node.identity.peer_id
        self.outbox = Outbox(store, node.router.make, node.send, rng=node.rng)
        self.contacts = Contacts(node, store)
        store.migrate_component("chat", MIGRATIONS)
        # what a delete wipes is overwritten on disk, not only unlinked from the b-tree
        store.execute("PRAGMA secure_delete = ON")
        self.timeline = Timeline(store, self.me, self._mentions)
        self.keys = KeyStore(store)
        self.rooms = Rooms(
            node, store, self.contacts, self._queue_control, self._emit, self._wake_up
        )
        self.counters: dict[str, int] = {}
        self.pairwise = Pairwise(store, self.identity, os.urandom, self.counters)
        #: told (conv_id, author id, msg_id, descriptor bytes) of each attachment received
        self.attachment_hooks: list[Callable[[str, str, str, bytes], None]] = []
        self.listeners = Listeners(log, self.counters)
        self.acks = Deferred(
            store, self.outbox, self.keys, self.me, node.clock, self.counters, self._emit
        )
        self.pending = Pending(store, self.counters)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.inbox = Inbox(
            store,
            self.identity,
            self.contacts,
            self.rooms,
            self.pairwise,
            self.keys,
            self.timeline,
            self.pending,
            lambda peer: self._ensure_dm(peer, active=False),
            node.clock,
        )
        self._queued: list[Envelope] = []  # CHAT envelopes of the burst being routed
        self.bundles = Bundles(self.counters)
        self.outbox.takes_bundles = lambda peer: takes_bundles(node.addresses.record(peer))
        self._receipts: list[Envelope] = []  # RECEIPT envelopes of the burst being routed
        self._drain: asyncio.Handle | None = None
        #: transactions that took in CHAT envelopes (one per burst)
        self.bursts = 0
        node.on_deliver(EnvelopeType.CHAT, self._queue_chat)
        node.on_deliver(EnvelopeType.BUNDLE, self._queue_bundle)
        node.on_deliver(EnvelopeType.CONTROL, self._on_control)
        node.on_deliver(EnvelopeType.RECEIPT, self._queue_receipt)
        node.on_deliver(EnvelopeType.ADDRESS, self._on_address)
        node.on_link_up(self._on_link_up)
        node.set_room_interests(self.rooms.joined)  # inventories ask for our rooms' logs
        # our signed prekey rides in our signed address record (chat/sessions.py), and
        # that we take bundles (chat/bundles.py)
        node.addresses.extra = lambda: {**self.pairwise.address_fields(node.clock()), FIELD: 1}

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._retry_loop())

    async def stop(self) -> None:
        self._take_queued()
        self.acks.settle_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _retry_loop(self) -> None:
        while True:
            sent = 0
            try:
                sent = self.outbox.flush(self.node.clock())
                self.pending.expire(self.node.clock())
            except MeshError as exc:
                log.warning("outbox flush failed: %s", exc)
            due = self.outbox.next_due()
            delay = 5.0 if due is None else min(5.0, max(0.05, due - self.node.clock()))
            if sent >= FLUSH_PAGE:  # more are due: once the links took what went out
                delay = 0.0
                await links_drained(lambda: [c.link.backlog for c in self.node.conns.values()])
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

    # -- sending -------------------------------------------------------------------

    def send_direct(self, peer: str, text: str) -> str:
        """Send `text` to a peer in your direct conversation; return the message id."""
        key = self.contacts.resolve(peer)
        if key == self.identity.public_key:
            raise UsageError("you cannot message yourself")
        conv_id = self._ensure_dm(key, active=True)
        return self._send_content(conv_id, 0, [key], "msg", text)

    def direct_conversation(self, peer: str) -> str:
        """The id of your direct conversation with a peer (started if new)."""
        key = self.contacts.resolve(peer)
        if key == self.identity.public_key:
            raise UsageError("you cannot message yourself")
        return self._ensure_dm(key, active=True)

    def say(self, room: str, text: str) -> str:
        """Send `text` to a room; return the message id."""
        return self._send_to(self.rooms.resolve(room), "msg", text)

    def attach(self, conv_id: str, text: str, attachment: bytes) -> str:
        """Send a message carrying an attachment's descriptor (chat.files); return its id."""
        return self._send_to(conv_id, "msg", text, attachment=attachment)

    def _send_to(
        self,
        conv_id: str,
        kind: str,
        text: str,
        ref: str | None = None,
        on: bool = True,
        attachment: bytes | None = None,
    ) -> str:
        """Send a content of `kind` to every other member of a room or direct conversation."""
        conv = self.conversation(conv_id)
        if conv is not None and conv["kind"] == "dm":
            peers = [self.contacts.resolve(conv["peer_id"])]
            return self._send_content(conv_id, 0, peers, kind, text, ref, on, attachment)
        state = self.rooms.state(conv_id)
        if self.identity.public_key not in state.members:
            raise UsageError("you are not a member of that room")
        others = sorted(state.members - {self.identity.public_key})
        return self._send_content(conv_id, state.epoch, others, kind, text, ref, on, attachment)

    # -- replies, edits, deletes, reactions (chat.timeline applies them) -----------------

    def reply(self, msg_id: str, text: str) -> str:
        """Answer a message in its conversation; return the reply's id."""
        target = self.message(msg_id)
        return self._send_to(target["conv_id"], "reply", text, target["id"])

    def edit(self, msg_id: str, text: str) -> str:
        """Replace the text of a message of yours, for everyone; return the edit's id."""
        target = self._own(msg_id, "edit")
        return self._send_to(target["conv_id"], "edit", text, target["id"])

    def delete(self, msg_id: str) -> str:
        """Delete a message of yours for everyone; return the delete's id."""
        target = self._own(msg_id, "delete")
        return self._send_to(target["conv_id"], "delete", "", target["id"])

    def react(self, msg_id: str, emoji: str) -> dict[str, Any]:
        """Toggle your reaction `emoji` on a message: {"id", "msg_id", "emoji", "on"}."""
        target = self.message(msg_id)
        if target["deleted"]:
            raise UsageError("that message was deleted")
        on = emoji.strip() not in target["mine"]
        sent = self._send_to(target["conv_id"], "react", emoji.strip(), target["id"], on)
        return {"id": sent, "msg_id": target["id"], "emoji": emoji.strip(), "on": on}

    def _own(self, msg_id: str, verb: str) -> dict[str, Any]:
        target = self.message(msg_id)
        if target["author"] != self.me:
            raise UsageError(f"only its author can {verb} a message")
        if target["deleted"]:
            raise UsageError("that message was deleted")
        return target

    def mark_read(self, conversation: str) -> dict[str, Any]:
        """Nothing in a conversation is unread any more: {"conv"}."""
        conv_id = self.resolve_conversation(conversation)
        unread.mark_read(self.store, conv_id, self.node.clock())
        self._emit("read", {"conv_id": conv_id})
        return {"conv": conv_id}

    def _mentions(self, text: str) -> bool:
        """Whether a text mentions this peer: @ its own name or @ its id's first 8 characters."""
        return unread.mentioned(text, [self.identity.name, self.me[:8]])

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

    def _send_content(
        self,
        conv_id: str,
        epoch: int,
        recipients: list[bytes],
        kind: str,
        text: str,
        ref: str | None = None,
        on: bool = True,
        attachment: bytes | None = None,
    ) -> str:
        check_text(kind, text)
        now = self.node.clock()
        conv = decode_peer_id(conv_id)
        with self.store.atomic():
            seq = self.store.next_counter("chat_seq")
            ts = int(now * 1000)
            msg_id = hashlib.blake2b(
                self.identity.public_key + conv + seq.to_bytes(8, "big") + ts.to_bytes(8, "big"),
                digest_size=16,
            ).hexdigest()
            content = Content(msg_id, text, ts, seq, kind, ref, on, attachment)
            plain = msgpack.packb(content.encode())
            direct = len(recipients) == 1 and conv == dm_conversation_id(
                self.identity.public_key, recipients[0]
            )
            sealed = b""
            if direct:  # on the pair's ratchet session: no sender key
                chain = None
                index = self.timeline.next_index(conv_id, self.me, epoch)
            else:
                chain, rotated = self.keys.sending_chain(conv_id, epoch, self.me, now)
                if rotated:
                    self._count("senderkey_rotated")
                    self.pairwise.forget_shares(conv_id)
                key, after = chain.advance()
                self.keys.save(conv_id, epoch, self.me, after)
                index = chain.index
                aad = associated_data(conv, epoch, index, self.identity.public_key)
                sealed = seal(key, plain, aad)
            status = "pending" if recipients else "delivered"
            stored = self.timeline.add(conv_id, self.me, content, status, now, epoch, index)
            for peer in recipients:
                peer_id = encode_peer_id(peer)
                share = None
                if chain is None:
                    sealed = self.pairwise.seal(peer, plain, now)
                elif not self.store.query(
                    "SELECT 1 FROM key_acks WHERE conv_id = ? AND epoch = ? AND peer_id = ?",
                    (conv_id, epoch, peer_id),
                ):
                    share = self.pairwise.share(peer, conv, conv_id, epoch, chain, now)
                payload = msgpack.packb([conv, epoch, index, sealed, share])
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
        self._announce([(msg_id, stored)])
        self._wake_up()
        return msg_id

    def _announce(self, contents: list[tuple[str, Stored]]) -> None:
        """Tell the listeners what committed contents changed (their views read together);
        count what they were refused."""
        added: list[str] = []
        changed: list[str] = []
        rows = {}  # the rows of messages staged in a burst (chat.timeline): not read again
        for msg_id, stored in contents:
            for reason in stored.refused:
                self._count(f"chat_refused_{reason}")
            if stored.purge:
                self.store.checkpoint()  # the WAL's copies of the deleted text go too
            if stored.added:
                added.append(msg_id)
                if stored.row is not None:
                    rows[msg_id] = stored.row
            changed.extend(stored.changed)
        for view in history.messages(self.store, added, self.me, rows):
            if view["kind"] in SHOWN_KINDS:  # a change shows as the message it changed
                self._emit("message", view)
        for msg_id in dict.fromkeys(changed):
            self._emit("changed", history.message(self.store, msg_id, self.me))

    def _queue_control(self, peer: bytes, body: dict[str, Any], now: float) -> None:
        payload = self.pairwise.seal(peer, msgpack.packb(body), now)
        item_id = hashlib.blake2b(payload, digest_size=16).hexdigest()
        self.outbox.add(item_id, encode_peer_id(peer), EnvelopeType.CONTROL, payload, now)

    # -- receiving -------------------------------------------------------------------

    def _on_chat(self, envelope: Envelope) -> None:
        """Take in one CHAT envelope now (with any that wait for the burst's end first)."""
        self._queued.append(envelope)
        self._take_queued()

    def _queue_chat(self, envelope: Envelope) -> None:
        """A CHAT envelope from the node: taken in with the rest of its burst, once the
        node has routed the burst (one transaction, one receipt per author)."""
        self._queued.append(envelope)
        self._schedule_drain()

    def _queue_bundle(self, envelope: Envelope) -> None:
        """A BUNDLE from the node: its CHAT envelopes queued as :meth:`_queue_chat` does."""
        self._queued.extend(self.bundles.unpack(envelope))
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._drain is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a test stepping the chat by hand): now
                self._take_queued()
                return
            self._drain = loop.call_soon(self._take_queued)

    def _take_queued(self) -> None:
        """Apply the queued receipts; take in the queued CHAT envelopes, then receipt
        and announce them."""
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        queued, self._queued = self._queued, []
        self._take_receipts()
        if not queued:
            return
        burst = self.inbox.take(queued)
        self.bursts += burst.transactions
        for name, n in burst.counts.items():
            self.counters[name] = self.counters.get(name, 0) + n
        for (author, flood), env_ids in burst.receipts.items():
            self._send_receipt(author, *self.bundles.receipt(env_ids), flood=flood)
        self.bundles.burst_done()
        self._announce([(taken.content.msg_id, taken.stored) for taken in burst.taken])
        for taken in burst.taken:
            content = taken.content
            if taken.stored.added and content.attachment is not None:
                for hook in self.attachment_hooks:
                    hook(taken.conv_id, taken.author_id, content.msg_id, content.attachment)

    def _on_address(self, envelope: Envelope) -> None:
        """Keep the display name and the prekey a peer announces in its signed address record."""
        name, author = announced_name(envelope), encode_peer_id(envelope.author)
        try:
            if name is not None:
                self.contacts.learn_name(author, name, envelope.timestamp_ms)
            self.pairwise.learn_prekey(envelope)
        except MeshError as exc:
            log.warning("announced name or prekey not kept: %s", exc)

    def _on_control(self, envelope: Envelope) -> None:
        self._take_queued()  # the chat messages that came before it first
        try:
            if self.contacts.is_blocked(encode_peer_id(envelope.author)):
                raise ChatError("the sender is blocked", reason="blocked")
            with self.store.atomic():  # the session moves on only if the message is taken
                plaintext = self.pairwise.open(envelope.author, envelope.payload, self.node.clock())
                if plaintext is None:
                    self._count("control_duplicate")
                    conv_id = None
                else:
                    body = msgpack.unpackb(plaintext)
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
            self._queued.extend(self.pending.take(conv_id))
            self._take_queued()

    def _queue_receipt(self, envelope: Envelope) -> None:
        """A RECEIPT from the node: applied with the rest of its burst (one transaction)."""
        self._receipts.append(envelope)
        self._schedule_drain()

    def _on_receipt(self, envelope: Envelope) -> None:
        """Apply one RECEIPT now (with whatever waits for the burst's end first)."""
        self._receipts.append(envelope)
        self._take_queued()
        self.acks.settle_all()

    def _take_receipts(self) -> None:
        receipts, self._receipts = self._receipts, []
        if receipts:
            self.acks.take(receipts)  # written down once idle (chat.receipts)

    def _send_receipt(
        self,
        dest: bytes,
        env_ids: list[bytes],
        guarded_by: dict[bytes, bytes] | None = None,
        flood: bool = False,
    ) -> None:
        if self.outbox.send_receipt(dest, env_ids, self.node.clock(), flood, guarded_by):
            self._count("receipt_refused_replay")

    # -- status --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "outbox": self.outbox.pending_count(),
            "pending_decrypt": self.pending.count(),
            "counters": dict(
                sorted(
                    {
                        **self.counters,
                        **self.outbox.counters(),
                        "room_events_refused": self.rooms.refused_in_batch,
                    }.items()
                )
            ),
        }
