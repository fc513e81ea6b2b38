"""Property tests for mesh.wire.envelope: arbitrary bytes and fields, and the checks
worker threads run on raw frames (signature, message id) agreeing with decode()."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.errors import EnvelopeError
from mesh.wire.envelope import (
    FLAG_FLOOD,
    MAX_HOPS,
    MAX_SIZE,
    MIN_SIZE,
    DestKind,
    Envelope,
    wire_message_id,
    wire_signature_holds,
)
from tests.mesh.wire.test_envelope import (
    ANNOUNCE_WIRE,
    AUTHOR,
    PEER_DATA_WIRE,
    announce,
    peer_data,
    room_data,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        # mostly-valid prefixes reach the deeper checks
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from(
                [bytes.fromhex(w)[:n] for w in (PEER_DATA_WIRE, ANNOUNCE_WIRE) for n in (5, 38, 80)]
            ),
            st.binary(max_size=300),
        ),
    )
)
def test_decode_of_arbitrary_bytes_raises_only_envelope_error(data: bytes) -> None:
    try:
        envelope = Envelope.decode(data)
    except EnvelopeError:
        return
    assert envelope.encode() == data
    with contextlib.suppress(EnvelopeError):  # a valid layout, but a forged signature
        envelope.verify()


@st.composite
def envelope_fields(draw: st.DrawFn) -> dict:
    dest_kind = draw(st.sampled_from(list(DestKind)))
    hop_limit = draw(st.integers(1, MAX_HOPS))
    return {
        "type": draw(st.integers(0, 255)),
        "dest_kind": dest_kind,
        "dest": b"" if dest_kind == DestKind.NONE else draw(st.binary(min_size=32, max_size=32)),
        "timestamp_ms": draw(st.integers(0, 2**64 - 1)),
        "seq": draw(st.integers(0, 2**64 - 1)),
        "payload": draw(st.binary(max_size=2000)),
        "flags": draw(st.sampled_from([0, FLAG_FLOOD])),
        "hop_limit": hop_limit,
        "hops": draw(st.integers(0, hop_limit)),
    }


@settings(max_examples=100, deadline=None)
@given(envelope_fields())
def test_round_trip_of_arbitrary_fields(fields: dict) -> None:
    hops = fields.pop("hops")
    type_ = fields.pop("type")
    envelope = Envelope.create(AUTHOR, type_, **fields).with_hops(hops)
    decoded = Envelope.decode(envelope.encode())
    assert decoded == envelope
    assert decoded.message_id == envelope.message_id
    assert decoded.encode() == envelope.encode()
    decoded.verify()


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.sampled_from(["peer", "announce", "room"]),
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_wire_signature_check_agrees_with_decode_and_verify(
    which: str, position: int, bit: int
) -> None:
    """The check worker threads run on raw frames agrees with verify() on decodable ones."""
    envelope = {"peer": peer_data, "announce": announce, "room": room_data}[which]()
    wire = envelope.with_hops(3).encode()
    assert wire_signature_holds(wire) is True
    mutated = bytearray(wire)
    mutated[position % len(wire)] ^= 1 << bit
    try:
        decoded = Envelope.decode(bytes(mutated))
    except EnvelopeError:
        return  # the router refuses it as malformed whatever the check says
    try:
        decoded.verify()
        verdict = True
    except EnvelopeError:
        verdict = False
    assert wire_signature_holds(bytes(mutated)) is verdict
    assert verdict is (position % len(wire) == 0)  # only the hop count is outside the signature


def test_wire_signature_check_refuses_sizes_no_envelope_has() -> None:
    assert wire_signature_holds(b"") is None
    assert wire_signature_holds(bytes(MIN_SIZE - 1)) is None
    assert wire_signature_holds(bytes(MAX_SIZE + 1)) is None
    assert wire_signature_holds(bytes(MIN_SIZE)) is False


@settings(max_examples=100, deadline=None)
@given(envelope_fields())
def test_the_id_read_off_the_wire_is_the_decoded_envelopes(fields: dict) -> None:
    hops = fields.pop("hops")
    type_ = fields.pop("type")
    wire = Envelope.create(AUTHOR, type_, **fields).with_hops(hops).encode()
    assert wire_message_id(wire) == Envelope.decode(wire).message_id
    assert wire_message_id(bytes([fields["hop_limit"] + 1]) + wire[1:]) is None  # decode refuses


def test_the_wire_id_refuses_sizes_no_envelope_has() -> None:
    assert wire_message_id(b"") is None
    assert wire_message_id(bytes(MIN_SIZE - 1)) is None
    assert wire_message_id(bytes(MAX_SIZE + 1)) is None
