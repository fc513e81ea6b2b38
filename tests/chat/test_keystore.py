"""Tests for chat.keystore: sender-key chains in the database, skipped keys, and replays."""

from __future__ import annotations

import pytest

from chat.keystore import KeyStore
from chat.senderkey import MAX_SKIP, Chain, message_key, next_chain_key
from mesh.errors import ChatError
from mesh.storage.store import Store

CK0 = bytes(range(32))
CONV, PEER = "conv", "peer"


def walk(steps: int) -> tuple[list[bytes], list[bytes]]:
    """mk_0..mk_{steps-1} and ck_0..ck_steps of the chain starting at CK0."""
    mks, cks = [], [CK0]
    for _ in range(steps):
        mks.append(message_key(cks[-1]))
        cks.append(next_chain_key(cks[-1]))
    return mks, cks


MKS, CKS = walk(8)


@pytest.fixture
def keys() -> KeyStore:
    return KeyStore(Store(None))


def skipped_indexes(keys: KeyStore) -> list[int]:
    return [r["idx"] for r in keys.store.query("SELECT idx FROM skipped_keys ORDER BY idx")]


def test_no_key_is_known_without_a_stored_or_shared_chain(keys: KeyStore) -> None:
    assert keys.message_key(CONV, 0, PEER, 0, None) is None
    assert keys.message_key(CONV, 0, PEER, 5, None) is None
    assert keys.chain(CONV, 0, PEER) is None


def test_save_and_chain_round_trip(keys: KeyStore) -> None:
    keys.save(CONV, 2, PEER, Chain(CKS[3], 3))
    assert keys.chain(CONV, 2, PEER) == Chain(CKS[3], 3)
    assert keys.chain(CONV, 1, PEER) is None  # chains are per epoch
    assert keys.chain(CONV, 2, "other") is None  # and per author
    assert keys.chain("other", 2, PEER) is None  # and per conversation


def test_a_shared_chain_is_used_when_none_is_stored(keys: KeyStore) -> None:
    assert keys.message_key(CONV, 0, PEER, 0, Chain(CK0, 0)) == MKS[0]
    assert keys.chain(CONV, 0, PEER) == Chain(CKS[1], 1)


def test_a_stored_chain_wins_over_a_shared_one(keys: KeyStore) -> None:
    keys.save(CONV, 0, PEER, Chain(CKS[2], 2))
    bogus = Chain(bytes(32), 2)
    assert keys.message_key(CONV, 0, PEER, 2, bogus) == MKS[2]


def test_keys_in_order_follow_the_chain(keys: KeyStore) -> None:
    got = [keys.message_key(CONV, 0, PEER, 0, Chain(CK0, 0))]
    got += [keys.message_key(CONV, 0, PEER, i, None) for i in range(1, 5)]
    assert got == MKS[:5]
    assert keys.chain(CONV, 0, PEER) == Chain(CKS[5], 5)
    assert skipped_indexes(keys) == []


def test_keys_out_of_order_use_the_skipped_keys_once(keys: KeyStore) -> None:
    assert keys.message_key(CONV, 0, PEER, 3, Chain(CK0, 0)) == MKS[3]
    assert skipped_indexes(keys) == [0, 1, 2]
    assert keys.chain(CONV, 0, PEER) == Chain(CKS[4], 4)
    assert keys.message_key(CONV, 0, PEER, 1, None) == MKS[1]
    assert keys.message_key(CONV, 0, PEER, 0, None) == MKS[0]
    assert skipped_indexes(keys) == [2]
    with pytest.raises(ChatError, match="replayed"):
        keys.message_key(CONV, 0, PEER, 1, None)
    assert keys.message_key(CONV, 0, PEER, 2, None) == MKS[2]
    assert skipped_indexes(keys) == []
    # and the chain goes on where it was
    assert keys.message_key(CONV, 0, PEER, 4, None) == MKS[4]


def test_a_replayed_index_is_refused(keys: KeyStore) -> None:
    keys.message_key(CONV, 0, PEER, 0, Chain(CK0, 0))
    keys.message_key(CONV, 0, PEER, 1, None)
    for index in (0, 1):
        with pytest.raises(ChatError, match="replayed"):
            keys.message_key(CONV, 0, PEER, index, None)


def test_a_late_message_carrying_its_own_share_still_opens(keys: KeyStore) -> None:
    # message 3 started the chain with its share; message 1, carrying a share at 1, comes later
    keys.message_key(CONV, 0, PEER, 3, Chain(CKS[3], 3))
    assert skipped_indexes(keys) == []
    assert keys.message_key(CONV, 0, PEER, 1, Chain(CKS[1], 1)) == MKS[1]
    # without a share that key is out of reach
    with pytest.raises(ChatError):
        keys.message_key(CONV, 0, PEER, 2, None)
    # and a share for another index does not help either
    with pytest.raises(ChatError):
        keys.message_key(CONV, 0, PEER, 2, Chain(CKS[1], 1))


def test_an_index_too_far_ahead_is_refused_and_changes_nothing(keys: KeyStore) -> None:
    keys.message_key(CONV, 0, PEER, 0, Chain(CK0, 0))
    with pytest.raises(ChatError, match="too far ahead"):
        keys.message_key(CONV, 0, PEER, 1 + MAX_SKIP + 1, None)
    assert keys.chain(CONV, 0, PEER) == Chain(CKS[1], 1)
    assert skipped_indexes(keys) == []
    assert keys.message_key(CONV, 0, PEER, 1, None) == MKS[1]


def test_chains_of_different_epochs_are_independent(keys: KeyStore) -> None:
    keys.message_key(CONV, 0, PEER, 0, Chain(CK0, 0))
    assert keys.message_key(CONV, 1, PEER, 0, None) is None
    other = bytes(range(1, 33))
    assert keys.message_key(CONV, 1, PEER, 0, Chain(other, 0)) == message_key(other)
    assert keys.message_key(CONV, 0, PEER, 1, None) == MKS[1]
