"""Envelopes: the signed unit that travels end to end across the mesh.

Wire layout (big-endian), see docs/protocol.md for golden vectors::

    u8   hops          relays passed so far; the only field outside the signature
    ---- signed part ----
    u8   version       1
    u8   type          EnvelopeType
    u8   flags         bit 0: FLOOD (relays flood instead of following paths)
    u8   hop_limit     1..8
    32   author        Ed25519 public key
    u8   dest_kind     0 none, 1 peer, 2 room
    32   dest          only when dest_kind != 0
    u64  timestamp_ms
    u64  seq           per-author sequence number
    u32  payload_len   <= MAX_PAYLOAD
    ...  payload
    ---- end of signed part ----
    64   signature     Ed25519 by author over the signed part

Message id = BLAKE2b-256 of the signed part. Decoding is strict: every length
is checked and anything malformed raises :class:`EnvelopeError`.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions

from mesh.errors import EnvelopeError, UsageError
from mesh.wire.identity import Identity

VERSION = 1
MAX_HOPS = 8
MAX_PAYLOAD = 128 * 1024
FLAG_FLOOD = 0x01
KNOWN_FLAGS = FLAG_FLOOD

_HEAD = struct.Struct(">BBBB32sB")  # version, type, flags, hop_limit, author, dest_kind
_TAIL = struct.Struct(">QQI")  # timestamp_ms, seq, payload_len
SIGNATURE_SIZE = 64
MIN_SIZE = 1 + _HEAD.size + _TAIL.size + SIGNATURE_SIZE
#: offsets in an encoded envelope, for code that reads raw frames (the router's duplicate
#: check); the wire_* functions below name the checks made on them
HOPS_AT = 0
TYPE_AT = 2  # after the hop count and version
HOP_LIMIT_AT = 4  # after the hop count and version, type, flags
AUTHOR_AT = 1 + 4  # after the hop count and version, type, flags, hop_limit
AUTHOR_END = AUTHOR_AT + 32
DEST_KIND_AT = AUTHOR_END
DEST_AT = AUTHOR_END + 1  # after the destination kind
DEST_END = DEST_AT + 32
MAX_SIZE = 1 + _HEAD.size + 32 + _TAIL.size + MAX_PAYLOAD + SIGNATURE_SIZE


class EnvelopeType(enum.IntEnum):
    """What an envelope carries; relays need only this to route it."""

    ANNOUNCE = 1  # "I am here": builds path tables
    ADDRESS = 2  # signed address record: where the author can be dialled
    PING = 3
    PONG = 4
    WITHDRAW = 5  # to neighbours only: "I no longer reach these peers"
    INVENTORY = 6  # to neighbours only: the room logs we hold, as per-author sequence vectors
    GRAFT = 7  # to neighbours only (room gossip): "add me to your mesh for these rooms"
    PRUNE = 8  # to neighbours only (room gossip): "drop me from your mesh for these rooms"
    IHAVE = 9  # to neighbours only (room gossip): ids of recent room envelopes
    IWANT = 10  # to neighbours only (room gossip): "send me these room envelopes"
    TABLE = 11  # to neighbours only: stored announces, many to one frame (path tables)
    SIGNAL = 12  # ephemeral (typing, cursors): forwarded, never stored (mesh/routing/signals.py)
    HELD = 14  # to a peer whose traffic waits here: "the peer in the payload left; it is held"
    FILE = 13  # attachment chunks and requests for them: forwarded, never stored (docs/files.md)
    PATH = 15  # path request (flooded within its hop limit) or its answer (to the asker)
    DATA = 16  # opaque end-to-end payload for the layers above; types >= 16 are stored
    CHAT = 17  # room or direct-conversation content (sender-key sealed)
    CONTROL = 18  # pairwise-boxed control: invites, membership events
    RECEIPT = 19  # signed delivery receipt: the envelope ids it acknowledges
    NOTE = 20  # a note update, room-addressed, sealed with the room's document key
    BUNDLE = 21  # CHAT payloads for one peer under one signature (mesh/wire/bundle.py)


class DestKind(enum.IntEnum):
    NONE = 0
    PEER = 1
    ROOM = 2


@dataclass(frozen=True)
class Envelope:
    """A signed envelope; build with :meth:`create`, parse with :meth:`decode`."""

    type: int
    author: bytes
    dest_kind: DestKind
    dest: bytes
    timestamp_ms: int
    seq: int
    payload: bytes
    signature: bytes
    flags: int = 0
    hop_limit: int = MAX_HOPS
    hops: int = 0
    version: int = VERSION
    signed_bytes: bytes = field(default=b"", repr=False, compare=False)

    @classmethod
    def create(
        cls,
        identity: Identity,
        type: int,
        *,
        dest_kind: DestKind = DestKind.NONE,
        dest: bytes = b"",
        timestamp_ms: int,
        seq: int,
        payload: bytes = b"",
        flags: int = 0,
        hop_limit: int = MAX_HOPS,
    ) -> Envelope:
        """Build and sign an envelope authored by `identity`."""
        if not 1 <= hop_limit <= MAX_HOPS:
            raise UsageError(f"hop_limit must be 1..{MAX_HOPS}")
        if dest_kind not in DestKind.__members__.values():
            raise UsageError(f"unknown dest_kind {dest_kind!r}")  # decode() would refuse it
        if (dest_kind == DestKind.NONE) != (dest == b"") or (dest and len(dest) != 32):
            raise UsageError("a destination is 32 bytes, and only present with a dest_kind")
        if len(payload) > MAX_PAYLOAD:
            raise UsageError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        if flags & ~KNOWN_FLAGS:
            raise UsageError(f"unknown flags {flags:#x}")
        signed = signed_part(
            VERSION,
            type,
            flags,
            hop_limit,
            identity.public_key,
            dest_kind,
            dest,
            timestamp_ms,
            seq,
            payload,
        )
        return cls(
            type=type,
            author=identity.public_key,
            dest_kind=dest_kind,
            dest=dest,
            timestamp_ms=timestamp_ms,
            seq=seq,
            payload=payload,
            signature=identity.sign(signed),
            flags=flags,
            hop_limit=hop_limit,
            signed_bytes=signed,
        )

    @property
    def message_id(self) -> bytes:
        """BLAKE2b-256 of the signed part: the envelope's identity everywhere."""
        # computed once and kept beside the fields (functools.cached_property takes a
        # lock on every read in Python 3.11; every relay reads this per envelope)
        cached = self.__dict__.get("_message_id")
        if cached is None:
            cached = hashlib.blake2b(self.signed_bytes, digest_size=32).digest()
            self.__dict__["_message_id"] = cached
        return cached

    @property
    def flood(self) -> bool:
        return bool(self.flags & FLAG_FLOOD)

    def encode(self) -> bytes:
        """Return the wire bytes (hop count, signed part, signature)."""
        # one copy (a + b + c makes two): a relay encodes every envelope it passes on
        return b"".join((bytes((self.hops,)), self.signed_bytes, self.signature))

    def with_hops(self, hops: int) -> Envelope:
        """Return a copy carrying another hop count (the signature still holds).

        Every relayed envelope takes this path, so it copies the fields as they
        are (a cached message id included) instead of running ``__init__`` again.
        """
        copy = object.__new__(Envelope)
        copy.__dict__.update(self.__dict__)
        copy.__dict__["hops"] = hops
        return copy

    def verify(self) -> None:
        """Check the author's signature; raise EnvelopeError if it does not hold."""
        try:
            nacl.bindings.crypto_sign_open(self.signature + self.signed_bytes, self.author)
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise EnvelopeError("bad envelope signature") from exc

    @classmethod
    def decode(cls, data: bytes, message_id: bytes | None = None) -> Envelope:
        """Parse wire bytes strictly; the signature is not checked here (see :meth:`verify`).

        `message_id` is ``wire_message_id(data)`` when the caller already computed it
        (a relay does, to drop duplicates first): the envelope keeps it instead of
        hashing its signed part again.
        """
        if len(data) < MIN_SIZE:
            raise EnvelopeError(f"envelope too short ({len(data)} bytes)")
        if len(data) > MAX_SIZE:
            raise EnvelopeError(f"envelope too long ({len(data)} bytes)")
        hops = data[0]
        version, type_, flags, hop_limit, author, dest_kind = _HEAD.unpack_from(data, 1)
        if version != VERSION:
            raise EnvelopeError(f"unknown envelope version {version}")
        if flags & ~KNOWN_FLAGS:
            raise EnvelopeError(f"unknown envelope flags {flags:#x}")
        if not 1 <= hop_limit <= MAX_HOPS:
            raise EnvelopeError(f"hop limit {hop_limit} outside 1..{MAX_HOPS}")
        if hops > hop_limit:
            raise EnvelopeError(f"hop count {hops} exceeds the hop limit {hop_limit}")
        if dest_kind >= len(_DEST_KINDS):  # a table, not DestKind(): every frame comes here
            raise EnvelopeError(f"unknown destination kind {dest_kind}")
        kind = _DEST_KINDS[dest_kind]
        offset = 1 + _HEAD.size
        dest = b""
        if kind != DestKind.NONE:
            dest = data[offset : offset + 32]
            offset += 32
        if len(data) < offset + _TAIL.size + SIGNATURE_SIZE:
            raise EnvelopeError("envelope truncated")
        timestamp_ms, seq, payload_len = _TAIL.unpack_from(data, offset)
        offset += _TAIL.size
        if payload_len > MAX_PAYLOAD:
            raise EnvelopeError(f"payload length {payload_len} exceeds {MAX_PAYLOAD}")
        if len(data) != offset + payload_len + SIGNATURE_SIZE:
            raise EnvelopeError(
                f"envelope length {len(data)} does not match its payload length {payload_len}"
            )
        end = offset + payload_len
        # every frame a relay receives is decoded: fill the fields directly, as with_hops
        # does, instead of the frozen dataclass's __init__ (one object.__setattr__ per field)
        envelope = object.__new__(cls)
        envelope.__dict__.update(
            type=type_,
            author=author,
            dest_kind=kind,
            dest=dest,
            timestamp_ms=timestamp_ms,
            seq=seq,
            payload=data[offset:end],
            signature=data[end:],
            flags=flags,
            hop_limit=hop_limit,
            hops=hops,
            version=version,
            signed_bytes=data[1:end],
        )
        if message_id is not None:
            envelope.__dict__["_message_id"] = message_id  # as the message_id property caches it
        return envelope


_DEST_KINDS = tuple(DestKind(value) for value in range(len(DestKind)))


def signed_part(
    version: int,
    type_: int,
    flags: int,
    hop_limit: int,
    author: bytes,
    dest_kind: DestKind,
    dest: bytes,
    timestamp_ms: int,
    seq: int,
    payload: bytes,
) -> bytes:
    """The signed part of an envelope with these fields (what its id hashes)."""
    if not (0 <= type_ <= 255 and 0 <= timestamp_ms < 2**64 and 0 <= seq < 2**64):
        raise UsageError("type, timestamp or seq out of range")
    head = _HEAD.pack(version, type_, flags, hop_limit, author, dest_kind)
    return head + dest + _TAIL.pack(timestamp_ms, seq, len(payload)) + payload


def wire_message_id(data: bytes) -> bytes | None:
    """The message id of an encoded envelope, without decoding it; None if its size is out of
    bounds or its hop count above its hop limit (which :meth:`Envelope.decode` refuses).

    When the id is one a node accepted before, these bytes are that envelope's signed
    part (BLAKE2b is collision resistant) with some hop count and 64 bytes of
    signature: a relay can drop a duplicate without parsing it.
    """
    if not MIN_SIZE <= len(data) <= MAX_SIZE or data[HOPS_AT] > data[HOP_LIMIT_AT]:
        return None
    return hashlib.blake2b(data[1:-SIGNATURE_SIZE], digest_size=32).digest()


def wire_signature_holds(data: bytes) -> bool | None:
    """Check the author's signature of an encoded envelope without decoding it.

    None when `data` cannot be an envelope (its size is out of bounds). For any
    envelope that :meth:`Envelope.decode` accepts, the answer is that of
    :meth:`Envelope.verify`: the signature is the last 64 bytes, the signed part
    lies between the hop count and the signature, the author at a fixed offset.
    Little Python runs here, so worker threads checking bursts of frames hold
    the GIL only briefly (PyNaCl releases it for the check itself).
    """
    if not MIN_SIZE <= len(data) <= MAX_SIZE:
        return None
    try:
        nacl.bindings.crypto_sign_open(
            data[-SIGNATURE_SIZE:] + data[1:-SIGNATURE_SIZE], data[AUTHOR_AT:AUTHOR_END]
        )
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True


# Raw-frame readers: for bytes that are (or are checked to be) an encoded envelope, at least
# up to the field read; each names one check that code handling raw frames makes.


def wire_type(data: bytes) -> int:
    """The type byte of an encoded envelope."""
    return data[TYPE_AT]


def wire_author(data: bytes) -> bytes:
    """The author key of an encoded envelope."""
    return data[AUTHOR_AT:AUTHOR_END]


def wire_hops(data: bytes) -> int:
    """The hop count of an encoded envelope: the relays it passed (unsigned)."""
    return data[HOPS_AT]


def wire_may_cross_a_link(data: bytes) -> bool:
    """Whether an encoded envelope may cross one more link: its hop count stays within its
    hop limit once a relay adds one."""
    return data[HOPS_AT] + 1 <= data[HOP_LIMIT_AT]


def wire_to_room(data: bytes) -> bool:
    """Whether an encoded envelope is addressed to a room."""
    return data[DEST_KIND_AT] == DestKind.ROOM


def wire_to_peer(data: bytes, peer: bytes) -> bool:
    """Whether an encoded envelope is addressed to the peer with public key `peer`."""
    return data[DEST_KIND_AT] == DestKind.PEER and data[DEST_AT:DEST_END] == peer


def wire_room(data: bytes) -> bytes:
    """The destination of an encoded envelope that :func:`wire_to_room` says is for a room."""
    return data[DEST_AT:DEST_END]


def wire_one_hop_on(data: bytes) -> bytes:
    """An encoded envelope handed straight to a neighbour: its hop count one more, kept
    within its hop limit (the count is outside the signature)."""
    hops = max(0, min(data[HOPS_AT] + 1, data[HOP_LIMIT_AT] - 1))
    return data[:HOPS_AT] + bytes((hops,)) + data[HOPS_AT + 1 :]


def wire_same_but_hops(a: bytes, b: bytes) -> bool:
    """Whether two encoded envelopes are the same bytes but for the (unsigned) hop count."""
    return a[1:] == b[1:]
