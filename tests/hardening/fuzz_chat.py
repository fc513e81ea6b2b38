"""Fuzz targets for what a peer sends the chat and notes layers: CHAT, BUNDLE, control,
receipt and note payloads (see tests/hardening/fuzz.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import msgpack
import pycrdt

from chat.messages import Chat, dm_conversation_id
from chat.pairwise import box
from chat.senderkey import seal
from crdt.notes import Notes
from crdt.payload import aad as payload_aad
from crdt.payload import new_note_id
from mesh.runtime.node import Node
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity, decode_peer_id
from tests.hardening.fuzzing import Target, _changed, mutate, packb, random_bytes, random_value


class ChatPeer:
    """A chat endpoint without sockets: outgoing envelopes pile up in `sent`."""

    def __init__(self, name: str, store: Store | None = None) -> None:
        self.node = Node(Identity.from_seed(name.encode().ljust(32, b"."), name))
        self.sent: list[Envelope] = []
        self.node.send = self.sent.append  # type: ignore[method-assign]
        self.chat = Chat(self.node, store or Store(None))
        self.key = self.node.identity.public_key
        self.id = self.node.identity.peer_id

    def take(self, type: EnvelopeType) -> list[Envelope]:
        picked = [e for e in self.sent if e.type == type]
        self.sent[:] = [e for e in self.sent if e.type != type]
        return picked

    def make(self, type: EnvelopeType, dest: bytes, payload: bytes, room: bool = False) -> Envelope:
        return self.node.router.make(
            type,
            self.node.clock(),
            dest_kind=DestKind.ROOM if room else DestKind.PEER,
            dest=dest,
            payload=payload,
        )


def deliver_control(to: ChatPeer, envelopes: list[Envelope]) -> None:
    for envelope in envelopes:
        to.chat._on_control(envelope)


def room_of(admin: ChatPeer, member: ChatPeer) -> str:
    """A room made by `admin` that `member` joined, keys exchanged (no sockets)."""
    member.chat.contacts.add(admin.id)
    room = admin.chat.rooms.new("fuzz")
    admin.chat.rooms.invite(room, member.id)
    for _ in range(4):
        deliver_control(member, admin.take(EnvelopeType.CONTROL))
        deliver_control(admin, member.take(EnvelopeType.CONTROL))
    assert member.key in admin.chat.rooms.state(room).members
    return room


class ChatPayload(Target):
    """CHAT payloads into Chat._on_chat, from a peer that holds a valid key."""

    name = "chat"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.a, self.b = ChatPeer("fuzz-a"), ChatPeer("fuzz-b")
        self.a.chat.send_direct(self.b.id, "hello")
        [self.valid] = self.a.take(EnvelopeType.CHAT)
        self.conv = dm_conversation_id(self.a.key, self.b.key)

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.25:
            return mutate(rng, self.valid.payload)
        if roll < 0.55:
            conv, epoch, index, sealed, share = msgpack.unpackb(self.valid.payload)
            fields = [conv, epoch, index, sealed, share]
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(5)
                fields[i] = rng.choice(
                    (
                        random_value(rng),
                        rng.randint(0, 2**32),
                        mutate(rng, sealed),
                        None,
                        rng.randbytes(32),
                        self.conv,
                    )
                )
            if rng.random() < 0.1:
                fields = fields[: rng.randrange(6)] + [random_value(rng)] * rng.randrange(2)
            return packb(fields)
        if roll < 0.65:  # content sealed with a real key but shaped wrongly
            return self._sealed_content(rng)
        if roll < 0.85:
            return packb(random_value(rng))
        return random_bytes(rng)

    def _sealed_content(self, rng: random.Random) -> bytes:
        from chat.senderkey import Chain, associated_data, new_chain_key

        chain = Chain(new_chain_key(), 0)
        key, _ = chain.advance()
        content = packb(
            rng.choice(
                (
                    random_value(rng),
                    {"id": random_value(rng), "t": "x", "ts": random_value(rng), "s": 1},
                )
            )
        )
        # a fresh chain per case: pretend it is a new conversation epoch
        epoch = rng.randrange(1, 2**32)
        aad = associated_data(self.conv, epoch, 0, self.a.key)
        share = box(self.a.node.identity, self.b.key, packb([self.conv, epoch, chain.chain_key, 0]))
        return packb([self.conv, epoch, 0, seal(key, content, aad), share])

    def check(self, case: bytes) -> str:
        envelope = self.a.make(EnvelopeType.CHAT, self.b.key, case)
        before = dict(self.b.chat.counters)
        self.b.chat._on_chat(envelope)
        receipted = self.b.take(EnvelopeType.RECEIPT)
        changed = _changed(before, self.b.chat.counters)
        assert receipted or changed, "a CHAT payload was neither accepted nor counted"
        pending = self.b.chat.status()["pending_decrypt"]
        assert pending <= 1000
        return "accepted" if receipted else changed[0]


class ControlPayload(Target):
    """CONTROL payloads into Chat._on_control: boxed by a real peer, and raw."""

    name = "control"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.admin, self.b = ChatPeer("fuzz-admin"), ChatPeer("fuzz-member")
        self.room = room_of(self.admin, self.b)
        self.room_key = decode_peer_id(self.room)
        rows = self.admin.chat.store.query("SELECT signed FROM room_events")
        self.events = [bytes(r["signed"]) for r in rows]

    def generate(self, rng: random.Random) -> tuple[bool, bytes]:
        roll = rng.random()
        if roll < 0.15:
            return False, random_bytes(rng)
        if roll < 0.4:
            body: Any = random_value(rng)
        else:
            body = {
                "k": rng.choice(("invite", "event", "join", random_value(rng))),
                "room": rng.choice((self.room_key, rng.randbytes(32), random_value(rng))),
            }
            events = [rng.choice((mutate(rng, e), e, random_value(rng))) for e in self.events]
            if rng.random() < 0.5:
                body["events"] = rng.choice((events, random_value(rng)))
            else:
                body["event"] = rng.choice((*events, random_value(rng)))
        return True, packb(body)

    def check(self, case: tuple[bool, bytes]) -> str:
        boxed, body = case
        payload = box(self.admin.node.identity, self.b.key, body) if boxed else body
        envelope = self.admin.make(EnvelopeType.CONTROL, self.b.key, payload)
        before = dict(self.b.chat.counters)
        self.b.chat._on_control(envelope)
        receipted = self.b.take(EnvelopeType.RECEIPT)
        self.b.sent.clear()
        changed = _changed(before, self.b.chat.counters)
        assert receipted or changed, "a CONTROL payload was neither accepted nor counted"
        return "accepted" if receipted else changed[0]


class BundlePayload(Target):
    """BUNDLE payloads into Chat._queue_bundle, signed by a member of the room: a bundle
    that is not an array of 2..256 distinct byte strings is refused whole and counted;
    each item is then refused or taken as any CHAT payload is."""

    name = "bundle"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.a, self.b = ChatPeer("fuzz-bundler"), ChatPeer("fuzz-bundled")
        room = room_of(self.a, self.b)
        self.b.take(EnvelopeType.RECEIPT)  # those of the room's set-up
        for i in range(4):
            self.a.chat.say(room, f"bundled {i}")
        self.items = [e.payload for e in self.a.take(EnvelopeType.CHAT) if e.dest == self.b.key]
        self.valid = packb(self.items)

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.3:
            return mutate(rng, self.valid)
        if roll < 0.6:  # an array of items: real, mutated, random, repeated, too many, too few
            items: list[Any] = [
                rng.choice(
                    (
                        rng.choice(self.items),
                        mutate(rng, rng.choice(self.items)),
                        random_bytes(rng, 80),
                        random_value(rng),
                    )
                )
                for _ in range(rng.choice((0, 1, 2, 3, 5, 257, 300)))
            ]
            if items and rng.random() < 0.2:
                items.append(items[0])
            return packb(items)
        if roll < 0.8:
            return packb(random_value(rng))
        return random_bytes(rng)

    def check(self, case: bytes) -> str:
        envelope = self.a.make(EnvelopeType.BUNDLE, self.b.key, case)
        before = dict(self.b.chat.counters)
        self.b.chat._queue_bundle(envelope)  # no event loop here: taken in at once
        receipted = self.b.take(EnvelopeType.RECEIPT)
        changed = _changed(before, self.b.chat.counters)
        assert receipted or changed, "a BUNDLE payload was neither accepted nor counted"
        if "bundle_rejected_malformed" in changed:
            assert not receipted, "a bundle refused whole had items receipted"
            return "dropped_malformed"
        return "accepted" if receipted else changed[-1]


class ReceiptPayload(Target):
    """RECEIPT payloads into Chat._on_receipt: only ids of the author's own items count."""

    name = "receipt"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.a, self.b = ChatPeer("fuzz-ra"), ChatPeer("fuzz-rb")
        self.mallory = ChatPeer("fuzz-rm")
        self.a.chat.send_direct(self.b.id, "waiting")
        [self.sent] = self.a.take(EnvelopeType.CHAT)

    def generate(self, rng: random.Random) -> bytes:
        ids = [rng.randbytes(32) for _ in range(rng.randrange(4))]
        return (
            mutate(rng, b"".join(ids) + self.sent.message_id)
            if rng.random() < 0.5
            else (random_bytes(rng, 2000))
        )

    def check(self, case: bytes) -> str:
        from mesh.storage.mailbox import receipt_ids

        named = self.sent.message_id in receipt_ids(case)
        # a third party naming our envelope id acknowledges nothing
        self.a.chat._on_receipt(self.mallory.make(EnvelopeType.RECEIPT, self.a.key, case))
        assert self.a.chat.outbox.pending_count() == 1
        self.a.chat._on_receipt(self.b.make(EnvelopeType.RECEIPT, self.a.key, case))
        assert self.a.chat.outbox.pending_count() == (0 if named else 1)
        if not named:
            return "ignored"
        self.a.chat.send_direct(self.b.id, "waiting")  # wait for the next receipt
        [self.sent] = self.a.take(EnvelopeType.CHAT)
        return "accepted"


class NotePayload(Target):
    """NOTE payloads into Notes.receive, from a member who holds the document key."""

    name = "note"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.admin, self.member = ChatPeer("fuzz-nadmin"), ChatPeer("fuzz-nmember")
        self.notes = Notes(self.admin.chat, self.admin.chat.store)
        self.room_id = self.admin.chat.rooms.resolve(room_of(self.admin, self.member))
        self.room = decode_peer_id(self.room_id)
        self.key = self.admin.chat.rooms.document_key(self.room_id, 0)
        assert self.key is not None
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        text = doc.get("body", type=pycrdt.Text)
        text += "hello fuzz"
        self.valid_update = bytes(doc.get_update())
        self.notes_ids = [new_note_id(self.room, bytes([i]) * 16) for i in range(1, 4)]
        self.seq = 0

    def generate(self, rng: random.Random) -> tuple[str, Any]:
        roll = rng.random()
        note = rng.choice(self.notes_ids)
        if roll < 0.5:  # sealed properly: the update itself is damaged
            update = mutate(rng, self.valid_update) if rng.random() < 0.8 else random_bytes(rng)
            return "sealed", (note, rng.choice((0, 0, 0, 1)), update)
        if roll < 0.8:
            fields = [note, 0, random_bytes(rng)]
            fields[rng.randrange(3)] = random_value(rng)
            return "raw", packb(fields[: rng.randint(1, 3)] if rng.random() < 0.1 else fields)
        return "raw", random_bytes(rng) if rng.random() < 0.5 else packb(random_value(rng))

    def check(self, case: tuple[str, Any]) -> str:
        kind, data = case
        self.seq += 1
        if kind == "sealed":
            note, epoch, update = data
            aad = payload_aad(self.room, note, epoch, self.member.key, self.seq)
            payload = packb([note, epoch, seal(self.key, update, aad)])
        else:
            payload = data
        envelope = self.member.node.router.make(
            EnvelopeType.NOTE,
            self.member.node.clock(),
            dest_kind=DestKind.ROOM,
            dest=self.room,
            payload=payload,
            seq=self.seq,
        )
        before = dict(self.notes.counters)
        self.notes.receive([envelope])
        changed = _changed(before, self.notes.counters)
        assert changed, "a NOTE payload was neither applied nor counted"
        return changed[0]
