"""Tests for mesh.wire.handshake: SHS v1 against published vectors, splits and failures."""

from __future__ import annotations

import hashlib
import hmac

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from mesh.errors import HandshakeError, UsageError
from mesh.wire.handshake import (
    MSG1_LEN,
    MSG2_LEN,
    MSG3_LEN,
    MSG4_LEN,
    ClientHandshake,
    HandshakeResult,
    ServerHandshake,
)

# --- Published vector -------------------------------------------------------
# Source: github.com/sunrise-choir/secret-handshake-rs, src/test.rs (constants
# APP, CLIENT_SEC, CLIENT_EPH_SEC, SERVER_SEC, SERVER_EPH_SEC, EXP_CLIENT_* and
# the "valid client challenge / auth" and "valid server challenge / ack" byte
# arrays), transcribed from decimal to hex. Ed25519 secret keys are given by
# their 32-byte seed (the first half of the 64-byte libsodium secret key).
NETWORK_KEY = bytes.fromhex("6f619f56130d357342d12054ff8c8f559d4a209a9c5a1db98d13b8ff686b7cc6")
CLIENT_SEED = bytes.fromhex("f3a806322c4ec0b7d2f1bd24b79a847773542f9720201aed40b445145f855cb0")
CLIENT_PUB = bytes.fromhex("e1a2498849775e54d066e978172ee1f5c64fb00097d046926f175e6519c01e23")
CLIENT_EPH = bytes.fromhex("50a9379d868edb987df0aed1e16d2ebc61e0c1bbc63ae2c118ebd5d63137d568")
SERVER_SEED = bytes.fromhex("7662114d56743a926354c6a423dc49d5f6e0f2e6af7447da3825d442a30e4ad1")
SERVER_PUB = bytes.fromhex("2abe719910f8bbc3a3c9bbcc56ee42973473a004f4010c4caa81420cca360146")
SERVER_EPH = bytes.fromhex("b0f8d2b9e24ca299ef9039ceda6102d79b05dfbd161c8955e4e95d4fd9cb3f7d")

MSG1 = bytes.fromhex(
    "d306149bb2d11e6b01038cf2496574eaf97f83e38e42f0c30d32266007d07cb4"
    "4f4f4deefed781c5eb29b9d02f209225ffedd0d7b65cc96a55569d2935a5b120"
)
MSG2 = bytes.fromhex(
    "2c8c4fe31799cacb5128723b38a73fa6c909329800ffe293162b54636bc6c6db"
    "a60c3fdaeb883d63e88ea593585d4fb117948139b318c0ae5a3e285333096152"
)
MSG3 = bytes.fromhex(
    "502218c32ed3eb425b594162891a56c52004998ea01238b40cab7f262c354a40"
    "37bc1619a11907f3c8c491f9cfd358b200ceadeabc14fbf0c7a95eb4d42096e2"
    "8a2c8deb21985bd71f7e3030dcef61e1674fbe38e3678ec37c0a154c420bc20b"
    "dc0fa3428ae8e40c82ac0489349f4062"
)
MSG4 = bytes.fromhex(
    "48725c696d30110e1996f23294463119defeff7cc2905472be94fcbd9f849dad"
    "5c0ef7c657e88d53544fe22bc25f0e088ae960287e99cd245fcbc8cadd767e63"
    "2fd8d1db0385f0d8a6b6b6e2d774b142"
)
CLIENT_ENC_KEY = bytes.fromhex("a21d99967be10aadafc9a022beb39e0eb069e8ee614285c2fa94c707229dae18")
CLIENT_ENC_NONCE = bytes.fromhex("2c8c4fe31799cacb5128723b38a73fa6c909329800ffe293")
CLIENT_DEC_KEY = bytes.fromhex("7d8899076df1ef54e4b08d173a815ae4bc5dbfe0d14393bb2dccb2114de17562")
CLIENT_DEC_NONCE = bytes.fromhex("d306149bb2d11e6b01038cf2496574eaf97f83e38e42f0c3")

TRAILER = b"box-stream bytes that follow the handshake"
MESSAGES = {1: MSG1, 2: MSG2, 3: MSG3, 4: MSG4}


def make_client(
    network_key: bytes = NETWORK_KEY, server_pub: bytes = SERVER_PUB
) -> ClientHandshake:
    return ClientHandshake(
        network_key,
        SigningKey(CLIENT_SEED),
        server_pub,
        ephemeral_key=PrivateKey(CLIENT_EPH),
    )


def make_server(network_key: bytes = NETWORK_KEY) -> ServerHandshake:
    return ServerHandshake(
        network_key, SigningKey(SERVER_SEED), ephemeral_key=PrivateKey(SERVER_EPH)
    )


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    """Cut data into pieces whose lengths cycle through sizes."""
    pieces, pos, i = [], 0, 0
    while pos < len(data):
        step = sizes[i % len(sizes)]
        pieces.append(data[pos : pos + step])
        pos += step
        i += 1
    return pieces


def run_pair(client: ClientHandshake, server: ServerHandshake) -> tuple[list[bytes], list[bytes]]:
    """Pump bytes between the two in memory until both stop sending."""
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    while True:
        c_out, s_out = client.data_to_send(), server.data_to_send()
        if not c_out and not s_out:
            return to_server, to_client
        if c_out:
            to_server.append(c_out)
            server.receive_data(c_out)
        if s_out:
            to_client.append(s_out)
            client.receive_data(s_out)


def _auth(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha512).digest()[:32]


def _sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def _vector_secrets() -> tuple[bytes, bytes, bytes]:
    """Independently derive ab, aB and Ab (spec formulas) for the vector keys."""
    server_eph_pub = nacl.bindings.crypto_scalarmult_base(SERVER_EPH)
    ab = nacl.bindings.crypto_scalarmult(CLIENT_EPH, server_eph_pub)
    a_b = nacl.bindings.crypto_scalarmult(
        CLIENT_EPH, nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(SERVER_PUB)
    )
    client_curve = SigningKey(CLIENT_SEED).to_curve25519_private_key().encode()
    ab_long = nacl.bindings.crypto_scalarmult(client_curve, server_eph_pub)
    return ab, a_b, ab_long


# --- Vectors ----------------------------------------------------------------


def test_message_lengths_are_64_64_112_80() -> None:
    assert (MSG1_LEN, MSG2_LEN, MSG3_LEN, MSG4_LEN) == (64, 64, 112, 80)


def test_vector_client_produces_published_msg1_and_msg3() -> None:
    client = make_client()
    assert client.data_to_send() == MSG1
    client.receive_data(MSG2)
    assert client.data_to_send() == MSG3
    assert not client.complete


def test_vector_server_produces_published_msg2_and_msg4() -> None:
    server = make_server()
    assert server.data_to_send() == b""
    server.receive_data(MSG1)
    assert server.data_to_send() == MSG2
    server.receive_data(MSG3)
    assert server.data_to_send() == MSG4
    assert server.complete


def test_vector_client_derives_published_keys_and_nonces() -> None:
    client = make_client()
    client.receive_data(MSG2 + MSG4)
    assert client.result == HandshakeResult(
        remote_public_key=SERVER_PUB,
        encrypt_key=CLIENT_ENC_KEY,
        encrypt_nonce=CLIENT_ENC_NONCE,
        decrypt_key=CLIENT_DEC_KEY,
        decrypt_nonce=CLIENT_DEC_NONCE,
    )


def test_vector_server_keys_mirror_the_client_keys() -> None:
    server = make_server()
    server.receive_data(MSG1 + MSG3)
    assert server.result == HandshakeResult(
        remote_public_key=CLIENT_PUB,
        encrypt_key=CLIENT_DEC_KEY,
        encrypt_nonce=CLIENT_DEC_NONCE,
        decrypt_key=CLIENT_ENC_KEY,
        decrypt_nonce=CLIENT_ENC_NONCE,
    )


def test_vector_matches_independent_recomputation_of_spec_formulas() -> None:
    # Cross-check the published bytes against the protocol guide's formulas.
    ab, a_b, ab_long = _vector_secrets()
    client_eph_pub = nacl.bindings.crypto_scalarmult_base(CLIENT_EPH)
    server_eph_pub = nacl.bindings.crypto_scalarmult_base(SERVER_EPH)
    assert _auth(NETWORK_KEY, client_eph_pub) + client_eph_pub == MSG1
    assert _auth(NETWORK_KEY, server_eph_pub) + server_eph_pub == MSG2
    key3 = _sha256(NETWORK_KEY, ab, a_b)
    plain3 = nacl.bindings.crypto_secretbox_open(MSG3, bytes(24), key3)
    assert plain3[64:] == CLIENT_PUB
    key4 = _sha256(NETWORK_KEY, ab, a_b, ab_long)
    sig4 = nacl.bindings.crypto_secretbox_open(MSG4, bytes(24), key4)
    assert sig4 == SigningKey(SERVER_SEED).sign(NETWORK_KEY + plain3 + _sha256(ab)).signature
    assert _sha256(_sha256(key4), SERVER_PUB) == CLIENT_ENC_KEY
    assert _sha256(_sha256(key4), CLIENT_PUB) == CLIENT_DEC_KEY


# --- Live pair --------------------------------------------------------------


def test_random_keys_pair_completes_and_keys_cross_match() -> None:
    net = bytes(range(32))
    server_key, client_key = SigningKey.generate(), SigningKey.generate()
    client = ClientHandshake(net, client_key, server_key.verify_key.encode())
    server = ServerHandshake(net, server_key)
    run_pair(client, server)
    assert client.complete and server.complete
    c, s = client.result, server.result
    assert c.remote_public_key == server_key.verify_key.encode()
    assert s.remote_public_key == client_key.verify_key.encode()
    assert (c.encrypt_key, c.encrypt_nonce) == (s.decrypt_key, s.decrypt_nonce)
    assert (c.decrypt_key, c.decrypt_nonce) == (s.encrypt_key, s.encrypt_nonce)
    assert c.encrypt_key != c.decrypt_key
    assert client.leftover == server.leftover == b""


def test_result_before_completion_raises_usage_error() -> None:
    client = make_client()
    with pytest.raises(UsageError):
        _ = client.result
    with pytest.raises(UsageError):
        _ = make_server().result


def test_data_to_send_clears_pending_bytes() -> None:
    client = make_client()
    assert client.data_to_send() == MSG1
    assert client.data_to_send() == b""


@pytest.mark.parametrize(
    "kwargs",
    [{"network_key": b"short"}, {"server_pub": b"\x01" * 31}],
    ids=["network-key-length", "server-key-length"],
)
def test_bad_constructor_input_raises_usage_error(kwargs: dict[str, bytes]) -> None:
    with pytest.raises(UsageError):
        make_client(**kwargs)


# --- Splitting --------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=130), min_size=1, max_size=12))
def test_server_accepts_any_split_and_keeps_leftover(sizes: list[int]) -> None:
    server = make_server()
    sent = b""
    for piece in chunked(MSG1 + MSG3 + TRAILER, sizes):
        server.receive_data(piece)
        sent += server.data_to_send()
    assert sent == MSG2 + MSG4
    assert server.complete
    assert server.leftover == TRAILER


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=12))
def test_client_accepts_any_split_and_keeps_leftover(sizes: list[int]) -> None:
    client = make_client()
    sent = client.data_to_send()
    for piece in chunked(MSG2 + MSG4 + TRAILER, sizes):
        client.receive_data(piece)
        sent += client.data_to_send()
    assert sent == MSG1 + MSG3
    assert client.result.encrypt_key == CLIENT_ENC_KEY
    assert client.leftover == TRAILER


def test_one_byte_at_a_time_completes_both_sides() -> None:
    server = make_server()
    for byte in MSG1 + MSG3:
        server.receive_data(bytes([byte]))
    client = make_client()
    for byte in MSG2 + MSG4:
        client.receive_data(bytes([byte]))
    assert server.complete and client.complete


def test_server_answers_msg1_without_waiting_for_msg3_bytes() -> None:
    server = make_server()
    server.receive_data(MSG1 + MSG3[:50])
    assert server.data_to_send() == MSG2
    assert not server.complete and server.leftover == b""


def test_bytes_after_completion_are_appended_to_leftover() -> None:
    server = make_server()
    server.receive_data(MSG1 + MSG3 + b"ab")
    server.receive_data(b"cd")
    assert server.leftover == b"abcd"


# --- Failures ---------------------------------------------------------------


def test_wrong_network_key_is_rejected_by_server_at_msg1() -> None:
    server = make_server(network_key=bytes(32))
    with pytest.raises(HandshakeError):
        server.receive_data(MSG1)
    assert server.data_to_send() == b""
    assert server.failed


def test_wrong_server_public_key_makes_server_reject_msg3() -> None:
    other = SigningKey(bytes(range(32, 64))).verify_key.encode()
    client, server = make_client(server_pub=other), make_server()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    with pytest.raises(HandshakeError):
        server.receive_data(client.data_to_send())
    assert not server.complete


@pytest.mark.parametrize("msg_no", [1, 2, 3, 4])
@pytest.mark.parametrize("position", [0, 31, 32, -1])
def test_tampered_byte_in_any_message_raises_handshake_error(msg_no: int, position: int) -> None:
    tampered = bytearray(MESSAGES[msg_no])
    tampered[position] ^= 0x01
    if msg_no in (1, 3):
        receiver: ClientHandshake | ServerHandshake = make_server()
        prefix = MSG1 if msg_no == 3 else b""
    else:
        receiver = make_client()
        prefix = MSG2 if msg_no == 4 else b""
    receiver.receive_data(prefix)
    with pytest.raises(HandshakeError):
        receiver.receive_data(bytes(tampered))
    assert not receiver.complete


def test_failure_is_sticky_and_later_data_raises_again() -> None:
    server = make_server(network_key=bytes(32))
    with pytest.raises(HandshakeError):
        server.receive_data(MSG1)
    with pytest.raises(HandshakeError):
        server.receive_data(MSG3)
    with pytest.raises(HandshakeError):
        server.receive_data(b"")


def test_msg3_with_signature_by_another_key_is_rejected() -> None:
    # Box opens (right key3) but the signature is not by the enclosed public key.
    ab, a_b, _ = _vector_secrets()
    signed = NETWORK_KEY + SERVER_PUB + _sha256(ab)
    forged = SigningKey(bytes(32)).sign(signed).signature + CLIENT_PUB
    msg3 = nacl.bindings.crypto_secretbox(forged, bytes(24), _sha256(NETWORK_KEY, ab, a_b))
    server = make_server()
    server.receive_data(MSG1)
    with pytest.raises(HandshakeError, match="signature"):
        server.receive_data(msg3)


def test_msg4_with_signature_by_another_key_is_rejected() -> None:
    ab, a_b, ab_long = _vector_secrets()
    key3 = _sha256(NETWORK_KEY, ab, a_b)
    plain3 = nacl.bindings.crypto_secretbox_open(MSG3, bytes(24), key3)
    forged = SigningKey(bytes(32)).sign(NETWORK_KEY + plain3 + _sha256(ab)).signature
    key4 = _sha256(NETWORK_KEY, ab, a_b, ab_long)
    msg4 = nacl.bindings.crypto_secretbox(forged, bytes(24), key4)
    client = make_client()
    client.receive_data(MSG2)
    with pytest.raises(HandshakeError, match="signature"):
        client.receive_data(msg4)


def test_low_order_ephemeral_key_is_rejected_as_handshake_error() -> None:
    # An all-zero ephemeral key with a valid hmac: scalarmult refuses it.
    zero_pk = bytes(32)
    server = make_server()
    with pytest.raises(HandshakeError):
        server.receive_data(_auth(NETWORK_KEY, zero_pk) + zero_pk)
