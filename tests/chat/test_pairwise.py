"""Tests for chat.pairwise: crypto_box between two peers' identity keys."""

from __future__ import annotations

import pytest

from chat.pairwise import box, unbox
from mesh.errors import ChatError
from mesh.wire.identity import Identity

ALICE = Identity.from_seed(bytes(range(32)))
BOB = Identity.from_seed(bytes(range(32, 64)))
CAROL = Identity.from_seed(bytes(range(64, 96)))
NONCE_AND_MAC = 24 + 16


def test_a_box_opens_for_its_peer_in_both_directions() -> None:
    sealed = box(ALICE, BOB.public_key, b"invite to garden")
    assert len(sealed) == NONCE_AND_MAC + 1 + 256  # the marker, then the smallest bucket
    assert unbox(BOB, ALICE.public_key, sealed) == b"invite to garden"
    assert unbox(ALICE, BOB.public_key, box(BOB, ALICE.public_key, b"ok")) == b"ok"


def test_boxing_twice_gives_different_ciphertexts() -> None:
    assert box(ALICE, BOB.public_key, b"same") != box(ALICE, BOB.public_key, b"same")


def test_a_third_identity_cannot_open_a_box() -> None:
    sealed = box(ALICE, BOB.public_key, b"secret")
    with pytest.raises(ChatError, match="failed to open"):
        unbox(CAROL, ALICE.public_key, sealed)
    with pytest.raises(ChatError, match="failed to open"):
        unbox(CAROL, BOB.public_key, sealed)


def test_a_box_does_not_open_as_if_from_another_sender() -> None:
    sealed = box(ALICE, BOB.public_key, b"secret")
    with pytest.raises(ChatError, match="failed to open"):
        unbox(BOB, CAROL.public_key, sealed)


@pytest.mark.parametrize("position", [0, 24, -1])
def test_a_tampered_box_fails_to_open(position: int) -> None:
    sealed = bytearray(box(ALICE, BOB.public_key, b"secret"))
    sealed[position] ^= 0x01
    with pytest.raises(ChatError, match="failed to open"):
        unbox(BOB, ALICE.public_key, bytes(sealed))


@pytest.mark.parametrize("length", [0, 10, 30, NONCE_AND_MAC + 5])
def test_a_truncated_box_fails_to_open(length: int) -> None:
    sealed = box(ALICE, BOB.public_key, b"secret")
    with pytest.raises(ChatError, match="failed to open"):
        unbox(BOB, ALICE.public_key, sealed[:length])


@pytest.mark.parametrize(
    "peer",
    [bytes(32), b"\xff" * 32, BOB.public_key[:31], BOB.public_key + b"\x00", b""],
    ids=["small-order", "not-a-point", "short", "long", "empty"],
)
def test_an_invalid_peer_key_is_refused(peer: bytes) -> None:
    with pytest.raises(ChatError, match="not a valid peer key"):
        box(ALICE, peer, b"secret")
    with pytest.raises(ChatError, match="not a valid peer key"):
        unbox(ALICE, peer, bytes(64))
