"""Tests for chat.keystore: sender-key chains in the database, skipped keys, and replays."""

from __future__ import annotations

import random

import pytest

from chat.keystore import MARK_EVERY, KeyStore
from chat.senderkey import (
    MAX_SKIP,
    ROTATE_MESSAGES,
    ROTATE_SECONDS,
    Chain,
    message_key,
    next_chain_key,
)
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


def test_a_share_at_or_past_the_stored_chain_wins_from_its_index_on(keys: KeyStore) -> None:
    """A sender that rotated starts a fresh chain at some index and shares it; the keys the
    old chain gave up to that index stay for messages still on the way."""
    keys.save(CONV, 0, PEER, Chain(CKS[2], 2))
    fresh = bytes(range(100, 132))
    assert keys.message_key(CONV, 0, PEER, 5, Chain(fresh, 5)) == message_key(fresh)
    assert keys.chain(CONV, 0, PEER) == Chain(next_chain_key(fresh), 6)
    assert skipped_indexes(keys) == [2, 3, 4]
    assert keys.message_key(CONV, 0, PEER, 3, None) == MKS[3]


def test_a_message_s_own_share_beats_a_skipped_key_of_a_rotated_out_chain(keys: KeyStore) -> None:
    # message 7 (fresh chain from 5) came first: keys 2..6 were derived from the old chain,
    # but 5 and 6 belong to the fresh one, and each carries its own share
    keys.save(CONV, 0, PEER, Chain(CKS[2], 2))
    fresh = bytes(range(100, 132))
    at6 = next_chain_key(fresh)
    keys.message_key(CONV, 0, PEER, 7, Chain(next_chain_key(at6), 7))
    assert keys.message_key(CONV, 0, PEER, 5, Chain(fresh, 5)) == message_key(fresh)
    assert keys.message_key(CONV, 0, PEER, 6, Chain(at6, 6)) == message_key(at6)
    assert keys.message_key(CONV, 0, PEER, 4, None) == MKS[4]


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
    # an earlier share of its chain gives it: the sender puts one share on each message of a
    # chain (chat.pairwise), so message 2 carries the share at 1
    assert keys.message_key(CONV, 0, PEER, 2, Chain(CKS[1], 1)) == MKS[2]
    # a share past the message's index does not
    with pytest.raises(ChatError):
        keys.message_key(CONV, 0, PEER, 0, Chain(CKS[1], 1))


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


def test_our_sending_chain_is_drawn_once_then_kept_until_rotation_is_due(keys: KeyStore) -> None:
    first, rotated = keys.sending_chain(CONV, 0, PEER, now=1000.0)
    assert first.index == 0 and not rotated  # a first chain is no rotation
    keys.save(CONV, 0, PEER, Chain(first.chain_key, ROTATE_MESSAGES - 1))
    again, rotated = keys.sending_chain(CONV, 0, PEER, now=1000.0 + ROTATE_SECONDS - 1)
    assert again.chain_key == first.chain_key and not rotated


@pytest.mark.parametrize(
    ("sent", "later"), [(ROTATE_MESSAGES, 1.0), (1, ROTATE_SECONDS)], ids=["count", "time"]
)
def test_our_chain_is_replaced_after_the_count_or_the_time(
    keys: KeyStore, sent: int, later: float
) -> None:
    """Whichever comes first: a fresh key at the chain's index, and every share is due again."""
    first, _ = keys.sending_chain(CONV, 0, PEER, now=1000.0)
    keys.save(CONV, 0, PEER, Chain(first.chain_key, sent))
    keys.store.execute("INSERT INTO key_acks VALUES (?, 0, 'bob')", (CONV,))
    fresh, rotated = keys.sending_chain(CONV, 0, PEER, now=1000.0 + later)
    assert rotated and fresh.index == sent and fresh.chain_key != first.chain_key
    assert keys.store.query("SELECT * FROM key_acks") == []
    assert keys.sending_chain(CONV, 0, PEER, now=1000.0 + later) == (fresh, False)


def test_a_receipt_for_a_message_of_a_rotated_out_chain_is_no_key_ack(keys: KeyStore) -> None:
    keys.sending_chain(CONV, 0, PEER, now=0.0)
    keys.save(CONV, 0, PEER, Chain(CK0, ROTATE_MESSAGES))
    keys.sending_chain(CONV, 0, PEER, now=1.0)  # rotates: the new chain starts at 100
    for msg_id, idx in (("old", ROTATE_MESSAGES - 1), ("new", ROTATE_MESSAGES)):
        keys.store.execute(
            "INSERT INTO messages VALUES (?, ?, ?, 't', 0, 0, 'pending', 0, 0, ?)",
            (msg_id, CONV, PEER, idx),
        )
    keys.acknowledged(CONV, 0, PEER, "bob", "old")
    assert keys.store.query("SELECT * FROM key_acks") == []
    keys.acknowledged(CONV, 0, PEER, "bob", "new")
    assert len(keys.store.query("SELECT * FROM key_acks")) == 1


def test_a_batch_reads_and_writes_a_chain_once_and_a_savepoint_undoes_a_refused_step(
    keys: KeyStore,
) -> None:
    keys.save(CONV, 0, PEER, Chain(CK0, 0))
    loads, saves = keys.loads, keys.saves
    with keys.batch():
        assert keys.message_key(CONV, 0, PEER, 0, None) == MKS[0]
        with pytest.raises(ChatError), keys.savepoint():  # its content fails to open, say
            assert keys.message_key(CONV, 0, PEER, 1, None) == MKS[1]
            raise ChatError("message failed authentication", reason="tampered")
        # the key of message 1 was not used up: its genuine copy still opens
        assert keys.message_key(CONV, 0, PEER, 1, None) == MKS[1]
        assert keys.message_key(CONV, 0, PEER, 2, None) == MKS[2]
    assert (keys.loads - loads, keys.saves - saves) == (1, 1)
    assert keys.chain(CONV, 0, PEER) == Chain(CKS[3], 3)  # written back at the end


def test_keys_behind_the_chain_follow_on_from_their_share(keys: KeyStore) -> None:
    keys.message_key(CONV, 0, PEER, 7, Chain(CKS[7], 7))  # the newest came first
    steps = keys.steps
    for index in range(1, 7):  # then the rest, each carrying its chain's share (at 1)
        assert keys.message_key(CONV, 0, PEER, index, Chain(CKS[1], 1)) == MKS[index]
    assert keys.steps - steps == 5  # one step each after the first, not one per message before

    # out of order again: derived from the share's start
    assert keys.message_key(CONV, 0, PEER, 2, Chain(CKS[1], 1)) == MKS[2]


def test_keys_of_a_chain_met_in_any_order_cost_a_few_steps_each(keys: KeyStore) -> None:
    # back after days, copies parked in the mesh and the author's retries of one chain's
    # messages come in no one order; each carries the chain's share (at index 0)
    count = 200
    mks, cks = walk(count)
    share = Chain(cks[0], 0)
    keys.message_key(CONV, 0, PEER, count - 1, share)  # the newest came first
    order = list(range(count - 1))
    random.Random(5).shuffle(order)
    steps = keys.steps
    for index in order:
        assert keys.message_key(CONV, 0, PEER, index, share) == mks[index]
    # each from the mark before it, one every MARK_EVERY steps (from the share's start,
    # before: about count / 3 steps a message here)
    assert keys.steps - steps <= (count - 1) * MARK_EVERY
    assert keys.steps - steps < count * count / 10
