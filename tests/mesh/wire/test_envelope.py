"""Tests for mesh.wire.envelope: golden vectors, strict decoding, signatures, hop counts."""

from __future__ import annotations

import hashlib
import struct

import pytest

from mesh.errors import EnvelopeError, UsageError
from mesh.wire.envelope import (
    FLAG_FLOOD,
    MAX_HOPS,
    MAX_PAYLOAD,
    MAX_SIZE,
    MIN_SIZE,
    VERSION,
    DestKind,
    Envelope,
    EnvelopeType,
)
from mesh.wire.identity import Identity

# --- Golden vectors -----------------------------------------------------------
# Inputs are fixed; Ed25519 signatures are deterministic, so the bytes are too.
# The same vectors appear in docs/protocol.md ("Golden vectors: envelopes").
AUTHOR = Identity.from_seed(bytes(range(32)))
PEER = Identity.from_seed(bytes(range(32, 64)))
ROOM_ID = bytes(range(0xA0, 0xC0))
TS = 1_700_000_000_000

AUTHOR_PUB = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
PEER_PUB = "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"

# 1. DATA to a peer: seq 1, payload "hello, mesh", default flags and hop limit
PEER_DATA_WIRE = (
    "00"  # hops
    "01100008"  # version 1, type DATA (0x10), flags 0, hop_limit 8
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"  # author
    "01"  # dest_kind PEER
    "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7"  # dest
    "0000018bcfe56800"  # timestamp_ms
    "0000000000000001"  # seq
    "0000000b"  # payload_len
    "68656c6c6f2c206d657368"  # payload
    "2e99a8b49352f54777dafd336997914dd6cdb05d282eb2d167c737ce5e45ba86"  # signature
    "fc2a52f3653fe539941e2b0e6af024fc8ca4b8df1e2d071c4851a41452ee480f"
)
PEER_DATA_ID = "a15a4c5ca62e6acc077ee37ed78f849836ac3cb0b7057057ca19585cb04b9190"
PEER_DATA_SIG = (
    "2e99a8b49352f54777dafd336997914dd6cdb05d282eb2d167c737ce5e45ba86"
    "fc2a52f3653fe539941e2b0e6af024fc8ca4b8df1e2d071c4851a41452ee480f"
)

# 2. ANNOUNCE: no destination, seq 2, empty payload (the smallest envelope, 122 bytes)
ANNOUNCE_WIRE = (
    "00"  # hops
    "01010008"  # version 1, type ANNOUNCE, flags 0, hop_limit 8
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "00"  # dest_kind NONE: no dest field
    "0000018bcfe56800"
    "0000000000000002"
    "00000000"
    "c76b61df10bab2694da8ac80bf4ca45f1d4254feb62ba1337fdf5ab92fbdce69"
    "83b4653184e59e8ab558040b073c0986a5be54f544be360d9d5c8538929e470a"
)
ANNOUNCE_ID = "54ca5921b43e16ce35eddb0f3f113d62d47a1eaa93cf8075d2e88c053fcbf2fd"
ANNOUNCE_SIG = (
    "c76b61df10bab2694da8ac80bf4ca45f1d4254feb62ba1337fdf5ab92fbdce69"
    "83b4653184e59e8ab558040b073c0986a5be54f544be360d9d5c8538929e470a"
)

# 3. DATA to a room: seq 3, timestamp TS + 1, FLOOD flag, hop limit 5, payload "room text"
ROOM_DATA_WIRE = (
    "00"  # hops
    "01100105"  # version 1, type DATA, flags FLOOD, hop_limit 5
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "02"  # dest_kind ROOM
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "0000018bcfe56801"
    "0000000000000003"
    "00000009"
    "726f6f6d2074657874"
    "702ccc4f1663fb676d42de46d61fe2b12bcb9fe1958eaed0d5ac66614acae000"
    "03780b850826603f1bc54203bf9b6524028965b7c7037c43caedf3415e623604"
)
ROOM_DATA_ID = "a19f803b58b0d4c6c4bd89c6c851e7c3f29ff21dbf3d6c56fc4ae4fa1acc3f7f"
ROOM_DATA_SIG = (
    "702ccc4f1663fb676d42de46d61fe2b12bcb9fe1958eaed0d5ac66614acae000"
    "03780b850826603f1bc54203bf9b6524028965b7c7037c43caedf3415e623604"
)


def peer_data() -> Envelope:
    return Envelope.create(
        AUTHOR,
        EnvelopeType.DATA,
        dest_kind=DestKind.PEER,
        dest=PEER.public_key,
        timestamp_ms=TS,
        seq=1,
        payload=b"hello, mesh",
    )


def announce() -> Envelope:
    return Envelope.create(AUTHOR, EnvelopeType.ANNOUNCE, timestamp_ms=TS, seq=2)


def room_data() -> Envelope:
    return Envelope.create(
        AUTHOR,
        EnvelopeType.DATA,
        dest_kind=DestKind.ROOM,
        dest=ROOM_ID,
        timestamp_ms=TS + 1,
        seq=3,
        payload=b"room text",
        flags=FLAG_FLOOD,
        hop_limit=5,
    )


def independent_encoding(
    *,
    type_: int,
    flags: int,
    hop_limit: int,
    dest_kind: int,
    dest: bytes,
    ts: int,
    seq: int,
    payload: bytes,
    hops: int = 0,
) -> tuple[bytes, bytes, bytes]:
    """The layout of mesh/wire/envelope.py's docstring, built with struct: (wire, id, signature)."""
    signed = (
        struct.pack(">BBBB", VERSION, type_, flags, hop_limit)
        + AUTHOR.public_key
        + struct.pack(">B", dest_kind)
        + dest
        + struct.pack(">QQI", ts, seq, len(payload))
        + payload
    )
    signature = AUTHOR.signing_key.sign(signed).signature
    message_id = hashlib.blake2b(signed, digest_size=32).digest()
    return struct.pack(">B", hops) + signed + signature, message_id, signature


VECTORS = {
    "peer_data": (
        peer_data,
        PEER_DATA_WIRE,
        PEER_DATA_ID,
        PEER_DATA_SIG,
        dict(
            type_=16,
            flags=0,
            hop_limit=8,
            dest_kind=1,
            dest=bytes.fromhex(PEER_PUB),
            ts=TS,
            seq=1,
            payload=b"hello, mesh",
        ),
    ),
    "announce": (
        announce,
        ANNOUNCE_WIRE,
        ANNOUNCE_ID,
        ANNOUNCE_SIG,
        dict(type_=1, flags=0, hop_limit=8, dest_kind=0, dest=b"", ts=TS, seq=2, payload=b""),
    ),
    "room_data": (
        room_data,
        ROOM_DATA_WIRE,
        ROOM_DATA_ID,
        ROOM_DATA_SIG,
        dict(
            type_=16,
            flags=1,
            hop_limit=5,
            dest_kind=2,
            dest=ROOM_ID,
            ts=TS + 1,
            seq=3,
            payload=b"room text",
        ),
    ),
}


def test_vector_keys() -> None:
    assert AUTHOR.public_key.hex() == AUTHOR_PUB
    assert PEER.public_key.hex() == PEER_PUB


@pytest.mark.parametrize("name", VECTORS)
def test_golden_vector(name: str) -> None:
    build, wire, message_id, signature, _ = VECTORS[name]
    envelope = build()
    assert envelope.encode().hex() == wire
    assert envelope.message_id.hex() == message_id
    assert envelope.signature.hex() == signature
    assert wire.endswith(signature)
    envelope.verify()


@pytest.mark.parametrize("name", VECTORS)
def test_golden_vector_matches_the_documented_layout(name: str) -> None:
    _, wire, message_id, signature, fields = VECTORS[name]
    expected_wire, expected_id, expected_sig = independent_encoding(**fields)
    assert expected_wire.hex() == wire
    assert expected_id.hex() == message_id
    assert expected_sig.hex() == signature


@pytest.mark.parametrize("name", VECTORS)
def test_golden_vector_decodes_to_its_fields(name: str) -> None:
    build, wire, message_id, _, fields = VECTORS[name]
    decoded = Envelope.decode(bytes.fromhex(wire))
    assert decoded == build()
    assert decoded.message_id.hex() == message_id
    assert (decoded.type, decoded.flags, decoded.hop_limit) == (
        fields["type_"],
        fields["flags"],
        fields["hop_limit"],
    )
    assert (decoded.dest_kind, decoded.dest) == (fields["dest_kind"], fields["dest"])
    assert (decoded.timestamp_ms, decoded.seq, decoded.payload) == (
        fields["ts"],
        fields["seq"],
        fields["payload"],
    )
    assert decoded.author == AUTHOR.public_key
    assert decoded.hops == 0
    assert decoded.version == VERSION
    decoded.verify()


def test_announce_is_the_smallest_envelope() -> None:
    assert len(bytes.fromhex(ANNOUNCE_WIRE)) == MIN_SIZE == 122
    assert MAX_SIZE == MIN_SIZE + 32 + MAX_PAYLOAD


def test_relayed_vector_differs_only_in_byte_zero() -> None:
    relayed = room_data().with_hops(2)
    assert relayed.encode().hex() == "02" + ROOM_DATA_WIRE[2:]
    assert relayed.message_id.hex() == ROOM_DATA_ID
    decoded = Envelope.decode(relayed.encode())
    assert decoded.hops == 2
    decoded.verify()


# --- round trip, signature ------------------------------------------------------


@pytest.mark.parametrize("build", [peer_data, announce, room_data])
def test_decode_inverts_encode(build) -> None:
    envelope = build()
    assert Envelope.decode(envelope.encode()) == envelope
    assert Envelope.decode(envelope.encode()).signed_bytes == envelope.signed_bytes


def _fails(data: bytes) -> bool:
    """True when the bytes are rejected by decode or by verify, always with EnvelopeError."""
    try:
        Envelope.decode(data).verify()
    except EnvelopeError:
        return True
    return False


@pytest.mark.parametrize("build", [peer_data, announce, room_data])
def test_any_byte_flip_in_signed_part_or_signature_is_rejected(build) -> None:
    wire = build().encode()
    for index in range(1, len(wire)):  # byte 0 (hops) is outside the signature
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(wire)
            tampered[index] ^= mask
            assert _fails(bytes(tampered)), (index, mask)


def test_hops_byte_is_not_signed() -> None:
    wire = bytearray(peer_data().encode())
    for hops in range(0, 9):
        wire[0] = hops
        decoded = Envelope.decode(bytes(wire))
        decoded.verify()
        assert decoded.hops == hops
        assert decoded.message_id.hex() == PEER_DATA_ID


def test_signature_by_another_key_is_rejected() -> None:
    envelope = peer_data()
    forged = Envelope.decode(envelope.encode()[:-64] + PEER.sign(envelope.signed_bytes))
    with pytest.raises(EnvelopeError, match="signature"):
        forged.verify()


def test_with_hops_keeps_signature_and_changes_only_byte_zero() -> None:
    envelope = peer_data()
    for hops in range(1, MAX_HOPS + 1):
        moved = envelope.with_hops(hops)
        assert moved.hops == hops
        assert moved.encode()[0] == hops
        assert moved.encode()[1:] == envelope.encode()[1:]
        assert moved.message_id == envelope.message_id
        assert moved == Envelope.decode(moved.encode())
        moved.verify()
    assert envelope.hops == 0  # frozen: the original is untouched


# --- strict decoding ------------------------------------------------------------


@pytest.mark.parametrize("build", [peer_data, announce, room_data])
def test_every_truncation_and_extension_is_an_envelope_error(build) -> None:
    wire = build().encode()
    for size in range(len(wire)):
        with pytest.raises(EnvelopeError):
            Envelope.decode(wire[:size])
    for extra in (b"\x00", b"\x00" * 31, b"\x00" * 32, b"\xff" * 64, b"\x00" * 100):
        with pytest.raises(EnvelopeError):
            Envelope.decode(wire + extra)


def _patch(wire: bytes, index: int, value: int) -> bytes:
    out = bytearray(wire)
    out[index] = value
    return bytes(out)


# offsets in the wire bytes: 0 hops, 1 version, 2 type, 3 flags, 4 hop_limit, 37 dest_kind
@pytest.mark.parametrize("version", [0, 2, 255])
def test_unknown_version_is_rejected(version: int) -> None:
    with pytest.raises(EnvelopeError, match="version"):
        Envelope.decode(_patch(peer_data().encode(), 1, version))


@pytest.mark.parametrize("flags", [0x02, 0x04, 0x80, 0xFF])
def test_unknown_flags_are_rejected(flags: int) -> None:
    with pytest.raises(EnvelopeError, match="flags"):
        Envelope.decode(_patch(peer_data().encode(), 3, flags))


@pytest.mark.parametrize("hop_limit", [0, MAX_HOPS + 1, 255])
def test_hop_limit_outside_1_to_8_is_rejected(hop_limit: int) -> None:
    with pytest.raises(EnvelopeError, match="hop limit"):
        Envelope.decode(_patch(_patch(peer_data().encode(), 0, 0), 4, hop_limit))


def test_hops_above_hop_limit_is_rejected() -> None:
    wire = room_data().encode()  # hop_limit 5
    Envelope.decode(_patch(wire, 0, 5))
    for hops in (6, 9, 255):
        with pytest.raises(EnvelopeError, match="hop count"):
            Envelope.decode(_patch(wire, 0, hops))


@pytest.mark.parametrize("dest_kind", [3, 4, 255])
def test_unknown_destination_kind_is_rejected(dest_kind: int) -> None:
    with pytest.raises(EnvelopeError, match="destination kind"):
        Envelope.decode(_patch(peer_data().encode(), 37, dest_kind))


def test_payload_length_must_match_the_envelope_length() -> None:
    wire = peer_data().encode()
    offset = 1 + 4 + 32 + 1 + 32 + 8 + 8  # payload_len of a peer envelope
    for length in (0, 10, 12, 1000):
        bad = wire[:offset] + struct.pack(">I", length) + wire[offset + 4 :]
        with pytest.raises(EnvelopeError, match="payload length"):
            Envelope.decode(bad)


def test_payload_length_above_max_is_rejected_even_when_the_bytes_are_there() -> None:
    env = Envelope.create(AUTHOR, EnvelopeType.DATA, timestamp_ms=TS, seq=1, payload=b"x")
    offset = 1 + 4 + 32 + 1 + 8 + 8
    body = b"x" * (MAX_PAYLOAD + 1)
    wire = env.encode()[:offset] + struct.pack(">I", len(body)) + body + env.signature
    with pytest.raises(EnvelopeError, match="payload length"):
        Envelope.decode(wire)
    with pytest.raises(EnvelopeError, match="too long"):
        Envelope.decode(wire + bytes(32))


def test_max_payload_is_accepted() -> None:
    payload = bytes(range(256)) * (MAX_PAYLOAD // 256)
    env = Envelope.create(
        AUTHOR,
        16,
        dest_kind=DestKind.PEER,
        dest=PEER.public_key,
        timestamp_ms=TS,
        seq=1,
        payload=payload,
    )
    assert len(env.encode()) == MAX_SIZE
    decoded = Envelope.decode(env.encode())
    assert decoded.payload == payload
    decoded.verify()


# --- create() misuse --------------------------------------------------------------


def test_create_rejects_oversized_payload() -> None:
    with pytest.raises(UsageError, match="exceeds"):
        Envelope.create(AUTHOR, 16, timestamp_ms=TS, seq=1, payload=bytes(MAX_PAYLOAD + 1))


@pytest.mark.parametrize("hop_limit", [0, MAX_HOPS + 1, -1])
def test_create_rejects_bad_hop_limit(hop_limit: int) -> None:
    with pytest.raises(UsageError, match="hop_limit"):
        Envelope.create(AUTHOR, 16, timestamp_ms=TS, seq=1, hop_limit=hop_limit)


@pytest.mark.parametrize(
    ("dest_kind", "dest"),
    [
        (DestKind.NONE, bytes(32)),
        (DestKind.PEER, b""),
        (DestKind.ROOM, b""),
        (DestKind.PEER, bytes(31)),
        (DestKind.ROOM, bytes(33)),
        (7, bytes(32)),
    ],
)
def test_create_rejects_inconsistent_destination(dest_kind, dest: bytes) -> None:
    with pytest.raises(UsageError):
        Envelope.create(AUTHOR, 16, dest_kind=dest_kind, dest=dest, timestamp_ms=TS, seq=1)


@pytest.mark.parametrize("flags", [0x02, 0x80])
def test_create_rejects_unknown_flags(flags: int) -> None:
    with pytest.raises(UsageError, match="flags"):
        Envelope.create(AUTHOR, 16, timestamp_ms=TS, seq=1, flags=flags)


@pytest.mark.parametrize(
    "fields",
    [{"type": 256}, {"type": -1}, {"timestamp_ms": -1}, {"timestamp_ms": 2**64}, {"seq": 2**64}],
)
def test_create_rejects_out_of_range_fields(fields: dict) -> None:
    kwargs = {"type": 16, "timestamp_ms": TS, "seq": 1, **fields}
    type_ = kwargs.pop("type")
    with pytest.raises(UsageError):
        Envelope.create(AUTHOR, type_, **kwargs)
