"""Fuzz every decoder a hostile peer or a local client can reach; `python -m tests.hardening.fuzz`.

Each :class:`Target` wraps one decoder as the product calls it (the same
handler, the same catch list) and checks the hardening property for every
case: no exception escapes except the documented ones, nothing hangs (each
case must finish within `CASE_LIMIT` seconds), and what is not accepted is
dropped with a counted reason. Inputs come from a seeded ``random.Random``:
raw bytes, random msgpack/JSON structures shaped like the real message, and
mutations (bit flips, cuts, splices) of valid messages.

The runner (``python -m tests.hardening.fuzz --cases 100000``) drives every
target with that many cases and prints the figures; the CI tests
(tests/hardening/test_fuzz.py) drive the same targets from hypothesis with a
few hundred cases each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import string
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pycrdt

from chat.daemon import Daemon
from chat.messages import Chat, dm_conversation_id
from chat.pairwise import box
from chat.senderkey import seal
from crdt.bridge import YjsBridge
from crdt.errors import NoteError
from crdt.notes import Notes
from crdt.payload import aad as payload_aad
from crdt.payload import new_note_id
from crdt.service import NotesService
from mesh.errors import EnvelopeError, FrameError, HandshakeError
from mesh.runtime.home import Home
from mesh.runtime.node import Node, NodeConfig
from mesh.storage.roomlog import RoomLog
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity, decode_peer_id, encode_peer_id
from mesh.wire.link import Link

#: a case that takes longer than this counts as a hang
CASE_LIMIT = 5.0
NETWORK_KEY = bytes(range(32))


# -- input generators ------------------------------------------------------------


def random_bytes(rng: random.Random, max_len: int = 300) -> bytes:
    size = rng.choice((0, 1, 2, 31, 32, 33, rng.randrange(max_len + 1)))
    return rng.randbytes(size)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A random msgpack-able value: ints of every width, bytes, text, lists, maps."""
    kinds = ["int", "bigint", "bytes", "key", "str", "none", "bool", "float"]
    if depth < 3:
        kinds += ["list", "map"]
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-3, 1100)
    if kind == "bigint":
        return rng.choice((-(2**63), 2**32, 2**32 - 1, 2**63 - 1, 2**64 - 1, -1))
    if kind == "bytes":
        return random_bytes(rng, 80)
    if kind == "key":
        return rng.randbytes(32)
    if kind == "str":
        return "".join(rng.choice(string.printable + "é€😀") for _ in range(rng.randrange(20)))
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "float":
        return rng.choice((0.5, -1e308, float("inf"), float("nan")))
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(6))]
    return {random_key(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


def random_key(rng: random.Random) -> Any:
    return rng.choice(
        (rng.randint(-5, 5), rng.randbytes(32), rng.randbytes(rng.randrange(8)), "k", "addrs")
    )


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A valid message, damaged: bits flipped, cut short, spliced or extended."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            del out[rng.randrange(len(out)) :]
        elif op == 2:
            i = rng.randrange(len(out) + 1)
            out[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 3 and out:
            i = rng.randrange(len(out))
            out[i] = rng.choice((0x00, 0x7F, 0x80, 0xC1, 0xDC, 0xDD, 0xDE, 0xDF, 0xFF))
        else:
            out += rng.randbytes(rng.randint(1, 16))
    return bytes(out)


def packb(value: Any) -> bytes:
    return bytes(msgpack.packb(value))


# -- targets ---------------------------------------------------------------------


class Target:
    """One decoder under fuzz. Subclasses set `name`, and implement `generate` and `check`."""

    name = ""
    #: whether `check` is a coroutine (run on the target's event loop)
    is_async = False

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        """Build what the decoder needs (stores, peers, a daemon); once per run."""

    def teardown(self, loop: asyncio.AbstractEventLoop) -> None:
        """Release what `setup` built."""

    def generate(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def check(self, case: Any) -> str:
        """Feed one case; return the outcome ("accepted" or a counted drop reason).

        Raise AssertionError when the property does not hold; any other
        exception escaping is a finding too.
        """
        raise NotImplementedError

    def run_case(self, loop: asyncio.AbstractEventLoop, case: Any) -> str:
        started = time.monotonic()
        if self.is_async:
            outcome = loop.run_until_complete(asyncio.wait_for(self.check(case), CASE_LIMIT))
        else:
            outcome = self.check(case)
        took = time.monotonic() - started
        assert took < CASE_LIMIT, f"{self.name}: one case took {took:.1f} s"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return outcome


def _changed(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(k for k, v in after.items() if v != before.get(k, 0))


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


class EnvelopeDecode(Target):
    """Envelope.decode: strict; EnvelopeError for anything malformed (also fuzzed in tests/mesh)."""

    name = "envelope"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        peer = Identity.from_seed(b"e" * 32)
        self.valid = Envelope.create(
            peer, 16, dest_kind=DestKind.PEER, dest=b"d" * 32, timestamp_ms=1, seq=1, payload=b"x"
        ).encode()

    def generate(self, rng: random.Random) -> bytes:
        return mutate(rng, self.valid) if rng.random() < 0.7 else random_bytes(rng, 400)

    def check(self, case: bytes) -> str:
        try:
            Envelope.decode(case).verify()
        except EnvelopeError:
            return "dropped_malformed"
        return "accepted"


class HandshakeBytes(Target):
    """A listening link fed arbitrary bytes: HandshakeError closes it (fuzzed in tests/mesh too)."""

    name = "handshake"

    def generate(self, rng: random.Random) -> list[bytes]:
        return [random_bytes(rng, 120) for _ in range(rng.randint(1, 4))]

    def check(self, case: list[bytes]) -> str:
        link = Link(network_key=NETWORK_KEY, identity=Identity.from_seed(b"h" * 32), now=0.0)
        try:
            for chunk in case:
                link.receive_data(chunk, 0.0)
        except (HandshakeError, FrameError):
            return "closed"
        return "pending"


class Inventory(Target):
    """INVENTORY payloads: RoomLog.missing, with the exceptions CatchUp.answer counts."""

    name = "inventory"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.store = Store(None)
        self.log = RoomLog(self.store)
        author = Identity.from_seed(b"i" * 32)
        self.room = b"r" * 32
        for seq in range(1, 4):
            envelope = Envelope.create(
                author,
                EnvelopeType.NOTE,
                dest_kind=DestKind.ROOM,
                dest=self.room,
                timestamp_ms=int(time.time() * 1000),
                seq=seq,
                payload=b"n",
            )
            self.log.keep(envelope, time.time())
        self.valid = self.log.inventory()

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.3:
            return mutate(rng, self.valid)
        if roll < 0.5:
            return random_bytes(rng)
        if roll < 0.8:  # shaped like an inventory
            return packb(
                {
                    rng.choice((self.room, rng.randbytes(32), random_key(rng))): {
                        rng.choice((rng.randbytes(32), random_key(rng))): random_value(rng)
                        for _ in range(rng.randrange(4))
                    }
                    if rng.random() < 0.8
                    else random_value(rng)
                    for _ in range(rng.randrange(4))
                }
            )
        return packb(random_value(rng))

    def check(self, case: bytes) -> str:
        try:
            found = self.log.missing(case)
        except (ValueError, TypeError, msgpack.UnpackException):
            return "dropped_bad_inventory"  # what CatchUp.answer counts
        assert len(found) <= 3
        return "accepted"


class AddressRecord(Target):
    """ADDRESS payloads in a delivered envelope: AddressBook.store."""

    name = "address_record"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.node = Node(Identity.from_seed(b"a" * 32), NodeConfig(max_address_records=50))
        self.authors = [Identity.from_seed(bytes([i]) * 32) for i in range(1, 80)]
        self.valid = packb({"addrs": ["ws://127.0.0.1:9"]})
        self.ts = int(time.time() * 1000)

    def generate(self, rng: random.Random) -> tuple[int, bytes]:
        roll = rng.random()
        if roll < 0.3:
            payload = mutate(rng, self.valid)
        elif roll < 0.6:
            addrs = rng.choice(
                (
                    [random_value(rng) for _ in range(rng.randrange(8))],
                    random_value(rng),
                    ["ws://127.0.0.1:1", "x" * rng.randrange(300)],
                )
            )
            payload = packb({rng.choice(("addrs", random_key(rng))): addrs})
        elif roll < 0.8:
            payload = packb(random_value(rng))
        else:
            payload = random_bytes(rng)
        return rng.randrange(len(self.authors)), payload

    def check(self, case: tuple[int, bytes]) -> str:
        author, payload = case
        self.ts += 1
        envelope = Envelope.create(
            self.authors[author],
            EnvelopeType.ADDRESS,
            timestamp_ms=self.ts,
            seq=1,
            payload=payload,
            hop_limit=3,
        )
        counters = self.node.router.counters
        before = counters.get("dropped_bad_address_record", 0)
        self.node._deliver(envelope, None)
        assert len(self.node.addresses) <= self.node.config.max_address_records
        assert counters.get("handler_errors", 0) == 0
        if counters.get("dropped_bad_address_record", 0) > before:
            return "dropped_bad_address_record"
        assert self.node.addresses.record(envelope.author) is envelope
        # whatever was kept must not break the code that dials it
        self.node.address_of(envelope.author)
        return "accepted"


class Withdraw(Target):
    """WITHDRAW envelopes on a link: Router._on_withdraw."""

    name = "withdraw"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        from mesh.routing.router import Router, RouterConfig

        self.me = Identity.from_seed(b"w" * 32)
        self.neighbour = Identity.from_seed(b"n" * 32)
        self.router = Router(self.me, time.time(), RouterConfig(ban_threshold=1e12))
        self.router.link_up(1, self.neighbour.public_key, time.time())
        self.router.link_up(2, Identity.from_seed(b"o" * 32).public_key, time.time())
        self.dests = [bytes([i]) * 32 for i in range(1, 20)]
        self.seq = 0

    def generate(self, rng: random.Random) -> tuple[int, bytes]:
        roll = rng.random()
        if roll < 0.5:
            payload = b"".join(rng.choice(self.dests) for _ in range(rng.randrange(6)))
            payload = mutate(rng, payload) if rng.random() < 0.3 else payload
        else:
            payload = random_bytes(rng, 500)
        return rng.choice((1, 1, 1, 2, 8)), payload

    def check(self, case: tuple[int, bytes]) -> str:
        hop_limit, payload = case
        now = time.time()
        for dest in self.dests[:5]:  # paths through the neighbour, for withdrawals to hit
            self.router.paths.learn(dest, 1, 3, now, None)
        self.seq += 1
        envelope = Envelope.create(
            self.neighbour,
            EnvelopeType.WITHDRAW,
            timestamp_ms=int(now * 1000),
            seq=self.seq,
            payload=payload,
            hop_limit=hop_limit,
        )
        counters = self.router.counters
        before = counters.get("dropped_malformed", 0)
        actions = self.router.receive(1, envelope.encode(), now)
        assert len(self.router.routes) <= self.router.config.max_routes
        if counters.get("dropped_malformed", 0) > before:
            assert not actions
            return "dropped_malformed"
        return "accepted"


class Table(Target):
    """TABLE envelopes on a link: Router._on_table and each entry it hands on."""

    name = "table"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        from mesh.routing.router import Router, RouterConfig, pack_table

        now = time.time()
        self.me = Identity.from_seed(b"t" * 32)
        self.neighbour = Identity.from_seed(b"n" * 32)
        self.router = Router(self.me, now, RouterConfig(ban_threshold=1e12))
        self.router.link_up(1, self.neighbour.public_key, now)
        self.router.link_up(2, Identity.from_seed(b"o" * 32).public_key, now)
        authors = [Identity.from_seed(bytes([i]) * 32) for i in range(1, 6)]
        self.announces = [
            Envelope.create(a, EnvelopeType.ANNOUNCE, timestamp_ms=int(now * 1000), seq=1).encode()
            for a in authors
        ]
        self.pack = pack_table
        self.seq = 0

    def generate(self, rng: random.Random) -> tuple[int, bytes]:
        roll = rng.random()
        if roll < 0.4:
            entries = [rng.choice(self.announces) for _ in range(rng.randrange(4))]
            entries = [mutate(rng, e) if rng.random() < 0.3 else e for e in entries]
            payload = b"".join(self.pack([e for e in entries if 0 < len(e) < 65536]))
        elif roll < 0.7:
            payload = mutate(rng, b"".join(self.pack(self.announces[:3])))
        else:
            payload = random_bytes(rng, 500)
        return rng.choice((1, 1, 1, 2)), payload

    def check(self, case: tuple[int, bytes]) -> str:
        hop_limit, payload = case
        now = time.time()
        self.seq += 1
        envelope = Envelope.create(
            self.neighbour,
            EnvelopeType.TABLE,
            timestamp_ms=int(now * 1000),
            seq=self.seq,
            payload=payload,
            hop_limit=hop_limit,
        )
        counters = self.router.counters
        before = counters.get("dropped_malformed", 0)
        self.router.receive(1, envelope.encode(), now)
        assert len(self.router.routes) <= self.router.config.max_routes
        for route in self.router.routes.values():
            # a path learned from an entry came through the table's link, and its stored
            # copy is a genuine announce of the destination
            if route.link == 1 and route.announce is not None:
                assert Envelope.decode(route.announce).author == route.dest
        return "dropped_malformed" if counters.get("dropped_malformed", 0) > before else "accepted"


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


class _DaemonTarget(Target):
    """A real daemon on a temporary home (control socket and notes), for the local decoders."""

    is_async = True

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="mn-fuzz-", dir="/tmp")
        home = Home(Path(self.tmp.name) / "h")
        identity = home.create_identity("fuzz")
        self.service = NotesService()
        self.daemon = Daemon(
            home,
            identity,
            NodeConfig(listen=("127.0.0.1", 0), auto_connect=False),
            extensions=[self.service],
        )
        loop.run_until_complete(self.daemon.start())

    def teardown(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.daemon.stop())
        self.tmp.cleanup()


#: commands left out of control fuzzing: `ping` waits by design (up to count x timeout),
#: `connect` would dial whatever address the fuzzer made up (not only loopback)
SLOW_OR_OUTBOUND = {"ping", "connect"}


class ControlRequest(_DaemonTarget):
    """Control-socket request lines into ControlServer._dispatch, on a running daemon."""

    name = "control_request"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        super().setup(loop)
        self.commands = sorted(set(self.daemon.control.commands) - SLOW_OR_OUTBOUND)

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.6:
            args = {
                rng.choice(
                    (
                        "peer",
                        "text",
                        "room",
                        "name",
                        "note",
                        "title",
                        "limit",
                        "conversation",
                        "count",
                        "verified",
                        random_value(rng).__class__.__name__,
                    )
                ): _json_value(rng)
                for _ in range(rng.randrange(4))
            }
            request: Any = {"cmd": rng.choice((*self.commands, "nope", 7)), "args": args}
            if rng.random() < 0.1:
                request["args"] = _json_value(rng)
            return json.dumps(request).encode()
        if roll < 0.8:
            return json.dumps(_json_value(rng)).encode()
        return random_bytes(rng)

    async def check(self, case: bytes) -> str:
        reply = await self.daemon.control._dispatch(case)
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool)
        json.dumps(reply)  # the reply must be sendable
        if reply["ok"]:
            return "accepted"
        error = str(reply["error"])
        assert error and "\n" not in error, f"not one clear line: {error!r}"
        return "refused"


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return rng.randint(-(2**70), 2**70) if rng.random() < 0.2 else rng.randint(-2, 20)
    if kind == 1:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(30)))
    if kind == 2:
        return None
    if kind == 3:
        return rng.random() < 0.5
    if kind == 4:
        return rng.choice((0.5, 1e300, -0.0))
    if kind == 5:
        return encode_peer_id(rng.randbytes(32))[: rng.choice((52, 8, 3))]
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(rng.randrange(5)): _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


class ControlSocket(_DaemonTarget):
    """Raw bytes on the real control socket: a JSON error line back, or a close; never a crash."""

    name = "control_socket"

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.5:
            return random_bytes(rng, 600)
        if roll < 0.8:
            return mutate(rng, b'{"cmd": "status", "args": {}}\n')
        return b'{"cmd": "id"}\n' + random_bytes(rng)

    async def check(self, case: bytes) -> str:
        path = str(self.daemon.control.path)
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(case)
            await writer.drain()
            writer.write_eof()
            reply = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
        assert reply.endswith(b"\n") and reply.count(b"\n") == 1, reply[:200]
        answer = json.loads(reply)
        return "accepted" if answer["ok"] else "refused"


class _FakeClient:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, message: bytes) -> None:
        self.sent.append(message)


class BridgeMessage(_DaemonTarget):
    """y-websocket messages into YjsBridge._handle (the exceptions _serve turns into 1003)."""

    name = "bridge"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        super().setup(loop)
        notes = self.service.notes
        assert notes is not None
        room = self.daemon.chat.rooms.new("fuzz")
        self.note_id = notes.new(room, "fuzz")
        self.bridge = YjsBridge(notes, "127.0.0.1", 0, "token")
        self.client = _FakeClient()
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        doc.get("body", type=pycrdt.Text).insert(0, "hello")
        self.update = bytes(doc.get_update())
        self.state = bytes(doc.get_state())

    def generate(self, rng: random.Random) -> bytes:
        valid = rng.choice(
            (
                pycrdt.create_update_message(self.update),
                bytes([0, 0]) + pycrdt.write_message(self.state),
                bytes([0, 1]) + pycrdt.write_message(self.update),
                bytes([1]) + pycrdt.write_message(b"{}"),
            )
        )
        roll = rng.random()
        if roll < 0.6:
            return mutate(rng, valid)
        if roll < 0.8:  # a well-framed message around a damaged body
            body = mutate(rng, rng.choice((self.update, self.state)))
            return bytes([0, rng.randrange(4)]) + pycrdt.write_message(body)
        return random_bytes(rng) or b"\x00"

    async def check(self, case: bytes) -> str:
        try:
            await self.bridge._handle(self.client, self.note_id, case)  # type: ignore[arg-type]
        except (ValueError, IndexError, RuntimeError, NoteError):
            return "closed_malformed"
        finally:
            self.client.sent.clear()
            # flush the coalesced local edit the update may have started
            self.bridge.notes.flush(self.note_id)
        return "accepted"


TARGETS: list[Callable[[], Target]] = [
    EnvelopeDecode,
    HandshakeBytes,
    Inventory,
    AddressRecord,
    Withdraw,
    Table,
    ChatPayload,
    BundlePayload,
    ControlPayload,
    ReceiptPayload,
    NotePayload,
    ControlRequest,
    ControlSocket,
    BridgeMessage,
]


def run(cases: int, seed: int, only: list[str] | None = None, out: Any = None) -> dict[str, Any]:
    """Run every target (or `only` these) with `cases` cases each; print and return the figures."""
    out = out or sys.stdout
    figures: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    try:
        for factory in TARGETS:
            target = factory()
            if only and target.name not in only:
                continue
            rng = random.Random(f"{seed}:{target.name}")
            target.setup(loop)
            started = time.monotonic()
            try:
                for i in range(cases):
                    case = target.generate(rng)
                    try:
                        target.run_case(loop, case)
                    except BaseException as exc:
                        print(f"{target.name}: case {i} failed on {case!r:.300}", file=out)
                        raise exc
            finally:
                target.teardown(loop)
            took = time.monotonic() - started
            figures[target.name] = {
                "cases": cases,
                "seconds": round(took, 1),
                "outcomes": dict(sorted(target.outcomes.items())),
            }
            top = ", ".join(
                f"{k}={v}" for k, v in sorted(target.outcomes.items(), key=lambda kv: -kv[1])[:4]
            )
            print(f"{target.name:<16} {cases:>8} cases  {took:7.1f} s  {top}", file=out, flush=True)
    finally:
        loop.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hardening.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=1000, help="cases per decoder (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--only", action="append", help="run only this target (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    figures = run(args.cases, args.seed, args.only)
    total = sum(f["cases"] for f in figures.values())
    print(f"total            {total:>8} cases over {len(figures)} decoders, no finding")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
