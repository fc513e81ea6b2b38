"""Tests for mesh.wire.boxstream: published vectors, round trips, splits and tampering."""

from __future__ import annotations

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.errors import FrameError, UsageError
from mesh.wire.boxstream import (
    HEADER_LEN,
    MAX_BODY,
    BoxStreamDecoder,
    BoxStreamEncoder,
)

# --- Published vector -------------------------------------------------------
# Source: github.com/sunrise-choir/box-stream-c, src/test.c (test_encryption /
# test_decryption: encryption_key, encryption_nonce, expected_header1/2,
# expected_packet1/2, expected_final_header), transcribed from decimal to hex.
# The key and nonce are the client encryption key/nonce of the SHS vector in
# tests/mesh/wire/test_handshake.py.
KEY = bytes.fromhex("a21d99967be10aadafc9a022beb39e0eb069e8ee614285c2fa94c707229dae18")
NONCE = bytes.fromhex("2c8c4fe31799cacb5128723b38a73fa6c909329800ffe293")
PLAIN1 = bytes([0, 1, 2, 3, 4, 5, 6, 7])
PLAIN2 = bytes([7, 6, 5, 4, 3, 2, 1, 0])
HEADER1 = bytes.fromhex("b51c6a75e2ba71ce8799fa36dde1b2d390be0e6666f67636c322aeb6be2d813060c1")
BODY1 = bytes.fromhex("e7ea50c371ad059e")
HEADER2 = bytes.fromhex("e3e6f9e6b0aa3122dc1d9c76e1f30703a3c57de1f06fc37ef094c9ed9e9e86e0f689")
BODY2 = bytes.fromhex("16868dbf1371d372")
GOODBYE = bytes.fromhex("0a30546f676723a2af4ebd3af0fac4e2c2c5574977ae817ce11e031a25dd57d5997b")
STREAM = HEADER1 + BODY1 + HEADER2 + BODY2 + GOODBYE


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """Cut data into pieces whose lengths cycle through sizes."""
    pieces, pos, i = [], 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        pieces.append(data[pos : pos + step])
        pos += step
        i += 1
    return pieces


def header_for(plain: bytes, nonce: bytes = NONCE) -> bytes:
    """A correctly boxed header carrying arbitrary plaintext (for bad-length tests)."""
    return nacl.bindings.crypto_secretbox(plain, nonce, KEY)


# --- Vectors ----------------------------------------------------------------


def test_vector_encoder_produces_published_frames_and_goodbye() -> None:
    enc = BoxStreamEncoder(KEY, NONCE)
    assert enc.encode(PLAIN1) == HEADER1 + BODY1
    assert enc.encode(PLAIN2) == HEADER2 + BODY2
    assert enc.goodbye() == GOODBYE


def test_vector_decoder_recovers_published_plaintexts_and_closes() -> None:
    dec = BoxStreamDecoder(KEY, NONCE)
    assert dec.receive_data(STREAM) == [PLAIN1, PLAIN2]
    assert dec.closed


def test_vector_header_holds_be_length_and_body_mac_under_nonce_n() -> None:
    # Independent check of the layout: header nonce n, body nonce n+1.
    plain = nacl.bindings.crypto_secretbox_open(HEADER1, NONCE, KEY)
    assert plain[:2] == (8).to_bytes(2, "big")
    body_nonce = (int.from_bytes(NONCE, "big") + 1).to_bytes(24, "big")
    opened = nacl.bindings.crypto_secretbox_open(plain[2:] + BODY1, body_nonce, KEY)
    assert opened == PLAIN1


# --- Round trips ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MAX_BODY, MAX_BODY + 1, 100_000])
def test_round_trip_preserves_data_and_splits_at_max_body(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    wire = BoxStreamEncoder(KEY, NONCE).encode(data)
    frames = -(-size // MAX_BODY)
    assert len(wire) == size + frames * HEADER_LEN
    bodies = BoxStreamDecoder(KEY, NONCE).receive_data(wire)
    assert len(bodies) == frames
    assert all(0 < len(b) <= MAX_BODY for b in bodies)
    assert b"".join(bodies) == data


def test_empty_encode_emits_nothing_and_keeps_nonce() -> None:
    enc = BoxStreamEncoder(KEY, NONCE)
    assert enc.encode(b"") == b""
    assert enc.encode(PLAIN1) == HEADER1 + BODY1


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=5000), max_size=4),
    st.lists(st.integers(min_value=1, max_value=6000), min_size=1, max_size=10),
)
def test_decoder_accepts_any_split(messages: list[bytes], sizes: list[int]) -> None:
    enc = BoxStreamEncoder(KEY, NONCE)
    wire = b"".join(enc.encode(m) for m in messages) + enc.goodbye()
    dec = BoxStreamDecoder(KEY, NONCE)
    out: list[bytes] = []
    for piece in chunked(wire, sizes):
        out += dec.receive_data(piece)
        assert dec.buffered <= MAX_BODY
    assert b"".join(out) == b"".join(messages)
    assert dec.closed


def test_decoder_byte_at_a_time_yields_vector_plaintexts() -> None:
    dec = BoxStreamDecoder(KEY, NONCE)
    out: list[bytes] = []
    for byte in STREAM:
        out += dec.receive_data(bytes([byte]))
    assert out == [PLAIN1, PLAIN2]
    assert dec.closed


def test_decoder_buffer_never_exceeds_one_header_or_body() -> None:
    wire = BoxStreamEncoder(KEY, NONCE).encode(bytes(3 * MAX_BODY))
    dec = BoxStreamDecoder(KEY, NONCE)
    peak = 0
    for piece in chunked(wire, [1000]):
        dec.receive_data(piece)
        peak = max(peak, dec.buffered)
    assert peak <= HEADER_LEN + MAX_BODY


# --- Nonce arithmetic -------------------------------------------------------


def test_nonces_wrap_at_2_pow_192() -> None:
    top = b"\xff" * 24  # header at 2**192 - 1, its body at 0, the next header at 1
    wire = BoxStreamEncoder(KEY, top).encode(b"a" * (MAX_BODY + 1))
    first_header = nacl.bindings.crypto_secretbox_open(wire[:HEADER_LEN], top, KEY)
    body = nacl.bindings.crypto_secretbox_open(
        first_header[2:] + wire[HEADER_LEN : HEADER_LEN + MAX_BODY], bytes(24), KEY
    )
    assert body == b"a" * MAX_BODY
    second = wire[HEADER_LEN + MAX_BODY : 2 * HEADER_LEN + MAX_BODY]
    one = bytes(23) + b"\x01"
    assert nacl.bindings.crypto_secretbox_open(second, one, KEY)[:2] == (1).to_bytes(2, "big")
    assert b"".join(BoxStreamDecoder(KEY, top).receive_data(wire)) == b"a" * (MAX_BODY + 1)


def test_frames_use_carried_nonces_when_nonce_ends_in_ff() -> None:
    start = bytes(21) + b"\xff\xff\xfe"  # header n=..fffe, body ..ffff, next header carries
    wire = BoxStreamEncoder(KEY, start).encode(b"x" * (MAX_BODY + 5))
    second_header = wire[HEADER_LEN + MAX_BODY : 2 * HEADER_LEN + MAX_BODY]
    carried = bytes(20) + b"\x01" + bytes(3)
    plain = nacl.bindings.crypto_secretbox_open(second_header, carried, KEY)
    assert plain[:2] == (5).to_bytes(2, "big")
    assert b"".join(BoxStreamDecoder(KEY, start).receive_data(wire)) == b"x" * (MAX_BODY + 5)


# --- Tampering and framing errors -------------------------------------------


@pytest.mark.parametrize("position", [0, 17, HEADER_LEN - 1])
def test_tampered_header_raises_frame_error(position: int) -> None:
    wire = bytearray(HEADER1 + BODY1)
    wire[position] ^= 0x80
    with pytest.raises(FrameError):
        BoxStreamDecoder(KEY, NONCE).receive_data(bytes(wire))


@pytest.mark.parametrize("position", [0, len(BODY1) - 1])
def test_tampered_body_raises_frame_error(position: int) -> None:
    wire = bytearray(HEADER1 + BODY1)
    wire[HEADER_LEN + position] ^= 0x01
    with pytest.raises(FrameError):
        BoxStreamDecoder(KEY, NONCE).receive_data(bytes(wire))


def test_reordered_frames_raise_frame_error() -> None:
    with pytest.raises(FrameError):
        BoxStreamDecoder(KEY, NONCE).receive_data(HEADER2 + BODY2 + HEADER1 + BODY1)


def test_wrong_key_raises_frame_error() -> None:
    with pytest.raises(FrameError):
        BoxStreamDecoder(bytes(32), NONCE).receive_data(HEADER1)


@pytest.mark.parametrize("length", [0, MAX_BODY + 1, 0xFFFF])
def test_header_length_zero_or_over_max_raises_frame_error(length: int) -> None:
    # Authentic header, but its length is not allowed (0 only as all-zero goodbye).
    header = header_for(length.to_bytes(2, "big") + b"\x01" * 16)
    with pytest.raises(FrameError, match="length"):
        BoxStreamDecoder(KEY, NONCE).receive_data(header)


def test_failure_is_sticky() -> None:
    dec = BoxStreamDecoder(KEY, NONCE)
    with pytest.raises(FrameError):
        dec.receive_data(HEADER2)
    assert dec.failed
    with pytest.raises(FrameError):
        dec.receive_data(HEADER1 + BODY1)


# --- Goodbye ----------------------------------------------------------------


def test_goodbye_sets_closed() -> None:
    dec = BoxStreamDecoder(KEY, NONCE)
    assert dec.receive_data(HEADER1 + BODY1 + HEADER2 + BODY2) == [PLAIN1, PLAIN2]
    assert not dec.closed
    assert dec.receive_data(GOODBYE) == []
    assert dec.closed


def test_immediate_goodbye_is_an_empty_stream() -> None:
    enc = BoxStreamEncoder(KEY, NONCE)
    dec = BoxStreamDecoder(KEY, NONCE)
    assert dec.receive_data(enc.goodbye()) == []
    assert dec.closed


def test_data_after_goodbye_in_same_chunk_raises_frame_error() -> None:
    with pytest.raises(FrameError, match="goodbye"):
        BoxStreamDecoder(KEY, NONCE).receive_data(STREAM + b"\x00")


def test_data_after_goodbye_in_later_chunk_raises_frame_error() -> None:
    dec = BoxStreamDecoder(KEY, NONCE)
    dec.receive_data(STREAM)
    assert dec.receive_data(b"") == []
    with pytest.raises(FrameError, match="goodbye"):
        dec.receive_data(b"\x00")


def test_encoder_refuses_encode_and_second_goodbye_after_goodbye() -> None:
    enc = BoxStreamEncoder(KEY, NONCE)
    enc.goodbye()
    assert enc.closed
    with pytest.raises(UsageError):
        enc.encode(b"late")
    with pytest.raises(UsageError):
        enc.goodbye()


@pytest.mark.parametrize(("key", "nonce"), [(b"k" * 31, NONCE), (KEY, b"n" * 23)])
def test_bad_key_or_nonce_length_raises_usage_error(key: bytes, nonce: bytes) -> None:
    with pytest.raises(UsageError):
        BoxStreamEncoder(key, nonce)
    with pytest.raises(UsageError):
        BoxStreamDecoder(key, nonce)
