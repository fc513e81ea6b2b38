"""Fuzz targets for what a peer sends the mesh: envelopes, handshakes, inventories,
address records, withdrawals, tables (see tests/hardening/fuzz.py)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgpack

from mesh.errors import EnvelopeError, FrameError, HandshakeError
from mesh.runtime.node import Node, NodeConfig
from mesh.storage.roomlog import RoomLog
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity
from mesh.wire.link import Link
from tests.hardening.fuzzing import (
    NETWORK_KEY,
    Target,
    mutate,
    packb,
    random_bytes,
    random_key,
    random_value,
)


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
        for dest in self.dests[:5]:  # paths through the neighbour, for withdrawals to hit
            self.router.paths.learn(dest, 1, 3, time.time(), None)
        self.seq += 1
        actions, dropped = _from_neighbour(self, EnvelopeType.WITHDRAW, case)
        if dropped:
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
        self.seq += 1
        _, dropped = _from_neighbour(self, EnvelopeType.TABLE, case)
        for route in self.router.routes.values():
            # a path learned from an entry came through the table's link, and its stored
            # copy is a genuine announce of the destination
            if route.link == 1 and route.announce is not None:
                assert Envelope.decode(route.announce).author == route.dest
        return "dropped_malformed" if dropped else "accepted"


def _from_neighbour(
    target: Any, kind: EnvelopeType, case: tuple[int, bytes]
) -> tuple[list[Any], bool]:
    """`case` (hop limit, payload) sent as a `kind` envelope by `target.neighbour` on link 1 of
    `target.router`: the router's actions, and whether it dropped the envelope as malformed."""
    hop_limit, payload = case
    router, now = target.router, time.time()
    envelope = Envelope.create(
        target.neighbour,
        kind,
        timestamp_ms=int(now * 1000),
        seq=target.seq,
        payload=payload,
        hop_limit=hop_limit,
    )
    before = router.counters.get("dropped_malformed", 0)
    actions = router.receive(1, envelope.encode(), now)
    assert len(router.routes) <= router.config.max_routes
    return actions, router.counters.get("dropped_malformed", 0) > before
