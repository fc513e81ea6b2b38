"""The Double Ratchet and X3DH of chat/ratchet.py, stepped by hand."""

from __future__ import annotations

import random

import pytest

from chat.ratchet import (
    MAX_SKIP,
    Ratchet,
    hkdf,
    keypair,
    x3dh_initiator,
    x3dh_responder,
)
from mesh.errors import ChatError

AD = b"A" * 32 + b"B" * 32


def test_hkdf_matches_rfc_5869_test_cases_1_and_3() -> None:
    ikm = bytes([0x0B] * 22)
    okm1 = hkdf(bytes(range(13)), ikm, bytes(range(0xF0, 0xFA)), 42)
    assert okm1.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    okm3 = hkdf(b"", ikm, b"", 42)
    assert okm3.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def pair(seed: int = 1) -> tuple[Ratchet, Ratchet]:
    """Alice and Bob after X3DH (Bob's signed prekey as his first ratchet key)."""
    rng = random.Random(seed).randbytes
    ik_a, ik_b, spk_b, ek_a = keypair(rng), keypair(rng), keypair(rng), keypair(rng)
    sk_a = x3dh_initiator(ik_a[0], ek_a[0], ik_b[1], spk_b[1])
    sk_b = x3dh_responder(ik_b[0], spk_b[0], ik_a[1], ek_a[1])
    assert sk_a == sk_b
    return Ratchet.initiator(sk_a, spk_b[1], rng), Ratchet.responder(sk_b, spk_b)


def test_x3dh_secrets_differ_with_any_other_key() -> None:
    rng = random.Random(2).randbytes
    ik_a, ik_b, spk_b, ek_a, other = (keypair(rng) for _ in range(5))
    sk = x3dh_initiator(ik_a[0], ek_a[0], ik_b[1], spk_b[1])
    assert x3dh_responder(ik_b[0], other[0], ik_a[1], ek_a[1]) != sk  # wrong prekey
    assert x3dh_responder(other[0], spk_b[0], ik_a[1], ek_a[1]) != sk  # wrong identity


def test_messages_go_both_ways_and_each_turn_moves_the_ratchet_keys_on() -> None:
    alice, bob = pair()
    keys_seen = set()
    for turn in range(4):
        sender, receiver = (alice, bob) if turn % 2 == 0 else (bob, alice)
        for i in range(3):
            header, ct = sender.encrypt(f"{turn}/{i}".encode(), AD)
            keys_seen.add(header[0])
            assert receiver.decrypt(header, ct, AD) == f"{turn}/{i}".encode()
    assert len(keys_seen) == 4  # one fresh ratchet key per turn


def test_out_of_order_messages_open_from_skipped_keys_once() -> None:
    alice, bob = pair()
    sent = [alice.encrypt(bytes([i]), AD) for i in range(5)]
    for i in (3, 0, 4, 1, 2):
        assert bob.decrypt(*sent[i], AD) == bytes([i])
    assert bob.skipped == {}
    with pytest.raises(ChatError) as used:
        bob.decrypt(*sent[1], AD)
    assert used.value.reason == "ratchet_used"


def test_a_message_of_an_earlier_chain_arrives_after_the_turn() -> None:
    alice, bob = pair()
    late = alice.encrypt(b"late", AD)
    first = alice.encrypt(b"first", AD)
    assert bob.decrypt(*first, AD) == b"first"
    answer = bob.encrypt(b"answer", AD)
    assert alice.decrypt(*answer, AD) == b"answer"
    after = alice.encrypt(b"after", AD)  # a new chain: pn says how long the old one was
    assert bob.decrypt(*after, AD) == b"after"
    assert bob.decrypt(*late, AD) == b"late"
    with pytest.raises(ChatError) as used:
        bob.decrypt(*first, AD)  # on an earlier ratchet key: a duplicate, not garbage
    assert used.value.reason == "ratchet_used"


def test_a_forged_or_altered_message_leaves_the_state_as_it_was() -> None:
    alice, bob = pair()
    header, ct = alice.encrypt(b"genuine", AD)
    before = bob.dump()
    with pytest.raises(ChatError) as bad:
        bob.decrypt(header, ct[:-1] + bytes([ct[-1] ^ 1]), AD)
    assert bad.value.reason == "tampered"
    with pytest.raises(ChatError):
        bob.decrypt(header, ct, AD[::-1])  # other associated data
    with pytest.raises(ChatError):
        bob.decrypt((keypair(random.Random(9).randbytes)[1], 0, 0), ct, AD)  # other key
    assert bob.dump() == before
    assert bob.decrypt(header, ct, AD) == b"genuine"


def test_skipping_is_bounded() -> None:
    alice, bob = pair()
    for _ in range(MAX_SKIP + 1):
        alice.encrypt(b"lost", AD)
    header, ct = alice.encrypt(b"too far", AD)
    with pytest.raises(ChatError) as far:
        bob.decrypt(header, ct, AD)
    assert far.value.reason == "ratchet_skip"


def test_the_state_survives_a_dump_and_load() -> None:
    alice, bob = pair()
    sent = [alice.encrypt(bytes([i]), AD) for i in range(3)]
    assert bob.decrypt(*sent[2], AD) == b"\x02"
    bob = Ratchet.load(bob.dump())
    assert bob.decrypt(*sent[0], AD) == b"\x00"
    alice = Ratchet.load(alice.dump())
    answer = bob.encrypt(b"back", AD)
    assert alice.decrypt(*answer, AD) == b"back"


def test_a_message_on_the_prekey_itself_is_refused_not_a_crash() -> None:
    """Before hearing back, the initiator's receiving chain is not started: a message that
    names the responder's prekey as its ratchet key opens nothing and changes nothing."""
    rng = random.Random(3).randbytes
    ik_a, ik_b, spk_b, ek_a = keypair(rng), keypair(rng), keypair(rng), keypair(rng)
    alice = Ratchet.initiator(x3dh_initiator(ik_a[0], ek_a[0], ik_b[1], spk_b[1]), spk_b[1], rng)
    before = alice.dump()
    with pytest.raises(ChatError) as bad:
        alice.decrypt((spk_b[1], 0, 0), b"\x00" * 40, AD)
    assert bad.value.reason == "tampered"
    assert alice.dump() == before
