"""Tests for chat.senderkey: the hash ratchet (golden vector), skipping, bounds, and the AEAD."""

from __future__ import annotations

import hashlib

import pytest

from chat.senderkey import (
    MAX_SKIP,
    NONCE_SIZE,
    Chain,
    associated_data,
    message_key,
    next_chain_key,
    open_sealed,
    seal,
)
from mesh.errors import ChatError

# --- Golden vector --------------------------------------------------------------
# ck_0 is fixed; everything below it follows from the derivation in the module docstring.
CK0 = bytes(range(32))
MK0 = "867bbdcf6c8515677254e137a9d6805c31fc6d1925c61b6d677b346e3a7888a8"
CK1 = "12f33e9bc776f248c23ff62c619bc77f48c249df34b8e261cb9344ec32fe109c"
MK1 = "9d499f4962f04aeafcfc67dd73ca8b7e1a70e9bd20bf48b4616f1e71f9f07414"
CK2 = "66c0a3b14dc899d92eef5bfa21b79336a5d600dc595a411ae807bdcfef7e44ef"

CONV = bytes(range(0xA0, 0xC0))
AUTHOR = bytes(range(0x40, 0x60))
OTHER = bytes(range(0x60, 0x80))


def walk(chain_key: bytes, steps: int) -> tuple[list[bytes], list[bytes]]:
    """Message keys mk_0..mk_{steps-1} and chain keys ck_0..ck_steps, one step at a time."""
    mks, cks = [], [chain_key]
    for _ in range(steps):
        mks.append(message_key(cks[-1]))
        cks.append(next_chain_key(cks[-1]))
    return mks, cks


def test_chain_derivation_matches_the_golden_vector() -> None:
    mk0, chain1 = Chain(CK0, 0).advance()
    mk1, chain2 = chain1.advance()
    assert (mk0.hex(), chain1.chain_key.hex(), mk1.hex(), chain2.chain_key.hex()) == (
        MK0,
        CK1,
        MK1,
        CK2,
    )
    assert (chain1.index, chain2.index) == (1, 2)


def test_golden_vector_follows_the_documented_keyed_blake2b() -> None:
    # Recomputed straight from the formula in the module docstring, not through the module.
    def b2(key: bytes, msg: bytes, person: bytes) -> str:
        return hashlib.blake2b(msg, key=key, digest_size=32, person=person).hexdigest()

    assert b2(CK0, b"\x01", b"mn-sk-msg-v1") == MK0
    assert b2(CK0, b"\x02", b"mn-sk-chain-v1") == CK1
    assert b2(bytes.fromhex(CK1), b"\x01", b"mn-sk-msg-v1") == MK1
    assert b2(bytes.fromhex(CK1), b"\x02", b"mn-sk-chain-v1") == CK2


def test_message_and_chain_keys_are_domain_separated() -> None:
    assert message_key(CK0) != next_chain_key(CK0)


# --- key_for ---------------------------------------------------------------------


def test_key_for_the_next_index_is_advance() -> None:
    key, after, skipped = Chain(CK0, 0).key_for(0)
    assert key.hex() == MK0
    assert after == Chain(bytes.fromhex(CK1), 1)
    assert skipped == {}


def test_key_for_skipping_returns_the_skipped_keys_a_straight_walk_gives() -> None:
    mks, cks = walk(CK0, 6)
    key, after, skipped = Chain(CK0, 0).key_for(4)
    assert key == mks[4]
    assert after == Chain(cks[5], 5)
    assert skipped == {0: mks[0], 1: mks[1], 2: mks[2], 3: mks[3]}


def test_key_for_from_a_chain_in_the_middle_skips_from_its_own_index() -> None:
    mks, cks = walk(CK0, 8)
    key, after, skipped = Chain(cks[3], 3).key_for(6)
    assert key == mks[6]
    assert after == Chain(cks[7], 7)
    assert skipped == {3: mks[3], 4: mks[4], 5: mks[5]}


def test_key_for_an_index_behind_the_chain_is_refused() -> None:
    _, cks = walk(CK0, 3)
    with pytest.raises(ChatError, match="behind the chain"):
        Chain(cks[3], 3).key_for(2)


def test_key_for_exactly_max_skip_ahead_is_allowed() -> None:
    key, after, skipped = Chain(CK0, 0).key_for(MAX_SKIP)
    assert len(skipped) == MAX_SKIP
    assert after.index == MAX_SKIP + 1
    assert key == message_key(walk(CK0, MAX_SKIP)[1][MAX_SKIP])


def test_key_for_more_than_max_skip_ahead_is_refused() -> None:
    with pytest.raises(ChatError, match="too far ahead"):
        Chain(CK0, 0).key_for(MAX_SKIP + 1)
    with pytest.raises(ChatError, match="too far ahead"):
        Chain(CK0, 10).key_for(10 + MAX_SKIP + 1)


# --- forward secrecy ---------------------------------------------------------------


def test_a_later_chain_key_does_not_yield_earlier_message_keys() -> None:
    mks, cks = walk(CK0, 4)
    for i in range(3):
        # everything reachable forward from ck_{i+1}, a few steps deep
        forward_mks, forward_cks = walk(cks[i + 1], 8)
        reachable = set(forward_mks) | set(forward_cks)
        assert mks[i] not in reachable
        assert cks[i] not in reachable
        # ...while the later keys are exactly what the straight walk gives
        assert forward_mks[0] == mks[i + 1]


# --- seal / open -----------------------------------------------------------------------

KEY = bytes.fromhex(MK0)
AAD = associated_data(CONV, 3, 7, AUTHOR)


def test_associated_data_layout() -> None:
    assert associated_data(CONV, 3, 7, AUTHOR) == CONV + bytes.fromhex("0000000300000007") + AUTHOR


def test_seal_then_open_returns_the_plaintext() -> None:
    sealed = seal(KEY, b"hello, room", AAD)
    assert len(sealed) == NONCE_SIZE + 256 + 16  # padded to the smallest bucket
    assert open_sealed(KEY, sealed, AAD) == b"hello, room"


def test_seal_uses_a_fresh_nonce_each_time() -> None:
    assert seal(KEY, b"same", AAD)[:NONCE_SIZE] != seal(KEY, b"same", AAD)[:NONCE_SIZE]


def test_open_with_the_wrong_key_fails() -> None:
    sealed = seal(KEY, b"secret", AAD)
    with pytest.raises(ChatError, match="authentication"):
        open_sealed(bytes.fromhex(MK1), sealed, AAD)


@pytest.mark.parametrize(
    "aad",
    [
        associated_data(CONV, 4, 7, AUTHOR),  # another epoch
        associated_data(CONV, 3, 8, AUTHOR),  # another index
        associated_data(CONV, 3, 7, OTHER),  # another author
        associated_data(bytes(32), 3, 7, AUTHOR),  # another conversation
    ],
    ids=["epoch", "index", "author", "conv"],
)
def test_open_under_another_header_fails(aad: bytes) -> None:
    sealed = seal(KEY, b"secret", AAD)
    with pytest.raises(ChatError, match="authentication"):
        open_sealed(KEY, sealed, aad)


@pytest.mark.parametrize("position", [0, NONCE_SIZE, -1])
def test_open_of_a_flipped_byte_fails(position: int) -> None:
    sealed = bytearray(seal(KEY, b"secret", AAD))
    sealed[position] ^= 0x01
    with pytest.raises(ChatError, match="authentication"):
        open_sealed(KEY, bytes(sealed), AAD)


def test_open_of_a_truncated_message_fails() -> None:
    sealed = seal(KEY, b"secret", AAD)
    with pytest.raises(ChatError, match="authentication"):
        open_sealed(KEY, sealed[:-1], AAD)
    with pytest.raises(ChatError, match="too short"):
        open_sealed(KEY, sealed[: NONCE_SIZE + 15], AAD)
    with pytest.raises(ChatError, match="too short"):
        open_sealed(KEY, b"", AAD)
