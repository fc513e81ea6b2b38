"""Tests for chat.padding and its use by every seal: a relay learns a bucket, not a length."""

from __future__ import annotations

import msgpack
import nacl.bindings
import nacl.public
import nacl.utils
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chat.sessions
from chat.padding import BUCKETS, MAX_PLAINTEXT, bucket, pad, unpad
from chat.pairwise import PADDED, box, unbox
from chat.senderkey import NONCE_SIZE, PADDED_AAD, open_sealed, seal
from crdt.payload import fits
from mesh.errors import ChatError, UsageError
from mesh.wire.envelope import MAX_PAYLOAD, EnvelopeType
from mesh.wire.identity import Identity
from tests.chat.test_messages import Peer, deliver

ALICE = Identity.from_seed(bytes(range(32)))
BOB = Identity.from_seed(bytes(range(32, 64)))
KEY = bytes(range(32))
AAD = b"header"


def test_buckets_are_the_documented_ones() -> None:
    assert BUCKETS == (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 122880)
    assert MAX_PLAINTEXT == 122879


@pytest.mark.parametrize(
    ("size", "padded"), [(0, 256), (255, 256), (256, 512), (65535, 65536), (65536, 122880)]
)
def test_a_plaintext_pads_to_the_smallest_bucket_with_room_for_the_mark(
    size: int, padded: int
) -> None:
    assert bucket(size) == padded
    assert len(pad(bytes(size))) == padded


def test_a_plaintext_beyond_the_last_bucket_is_refused() -> None:
    with pytest.raises(UsageError, match="too large to seal"):
        pad(bytes(MAX_PLAINTEXT + 1))


@given(st.binary(max_size=3000))
def test_pad_then_unpad_gives_back_the_plaintext_even_ending_in_the_mark(data: bytes) -> None:
    for tail in (b"", b"\x80", b"\x80\x00", b"\x00"):
        assert unpad(pad(data + tail)) == data + tail


@pytest.mark.parametrize(
    "block",
    [bytes(256), b"\x01" * 256, b"\x80" + bytes(254) + b"\x01", b"a\x80" + bytes(298)],
    ids=["all-zero", "no-mark", "junk-after-mark", "not-a-bucket"],
)
def test_a_malformed_pad_is_refused_with_its_reason(block: bytes) -> None:
    with pytest.raises(ChatError) as caught:
        unpad(block)
    assert caught.value.reason == "bad_padding"


@pytest.mark.parametrize("size", [1, 100, 250])
def test_sealed_messages_of_different_lengths_in_a_bucket_are_the_same_size(size: int) -> None:
    assert len(seal(KEY, b"x" * size, AAD)) == NONCE_SIZE + 256 + 16
    assert len(box(ALICE, BOB.public_key, b"x" * size)) == 24 + 16 + 1 + 256


def test_a_sealed_message_with_a_bad_pad_inside_is_refused_as_bad_padding() -> None:
    nonce = nacl.utils.random(NONCE_SIZE)
    bad = nonce + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        b"\x01" * 256, PADDED_AAD + AAD, nonce, KEY
    )
    with pytest.raises(ChatError) as caught:
        open_sealed(KEY, bad, AAD)
    assert caught.value.reason == "bad_padding"


def test_a_box_with_a_bad_pad_inside_is_refused_as_bad_padding() -> None:
    raw = nacl.public.Box(
        nacl.public.PrivateKey(ALICE.x25519_private_key),
        nacl.public.PublicKey(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(BOB.public_key)),
    )
    with pytest.raises(ChatError) as caught:
        unbox(BOB, ALICE.public_key, bytes(raw.encrypt(PADDED + b"\x02" * 256)))
    assert caught.value.reason == "bad_padding"
    # a box made before padding existed (its plaintext is msgpack) still opens as it was
    legacy = msgpack.packb({"k": "event"})
    assert unbox(BOB, ALICE.public_key, bytes(raw.encrypt(legacy))) == legacy


def test_a_seal_made_before_padding_existed_still_opens() -> None:
    nonce = nacl.utils.random(NONCE_SIZE)
    legacy = nonce + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        b"old text", AAD, nonce, KEY
    )
    assert open_sealed(KEY, legacy, AAD) == b"old text"
    with pytest.raises(ChatError) as caught:
        open_sealed(KEY, legacy, b"other header")
    assert caught.value.reason == "tampered"


def test_the_longest_chat_message_still_fits_an_envelope_after_padding() -> None:
    """16,000 four-byte characters (the most a message may hold) pad to 64 KiB."""
    content = msgpack.packb({"id": "f" * 32, "t": "\U0001f600" * 16_000, "ts": 2**62, "s": 2**62})
    sealed = seal(KEY, content, AAD)
    assert len(sealed) == NONCE_SIZE + 65536 + 16
    share = box(ALICE, BOB.public_key, msgpack.packb([bytes(32), 2**31, bytes(32), 2**31]))
    payload = msgpack.packb([bytes(32), 2**31, 2**31, sealed, share])
    assert len(payload) <= MAX_PAYLOAD


def test_a_note_update_fits_only_if_its_padded_seal_fits() -> None:
    note = bytes(32)
    assert fits(note, 2**31, MAX_PLAINTEXT)
    assert not fits(note, 0, MAX_PLAINTEXT + 1)


def test_a_dm_with_a_bad_pad_from_a_key_holder_is_refused_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the author can seal a bad pad; the receiver refuses it and counts the reason."""

    a, b = Peer("alice"), Peer("bob")
    # the author's own session seals a body with junk where the padding should be
    monkeypatch.setattr(chat.sessions, "pad", lambda body: body + b"\x01" * 200)
    a.chat.send_direct(b.id, "genuine")
    monkeypatch.undo()
    deliver(b, a.take(EnvelopeType.CHAT))
    assert b.texts(a.id) == []
    assert b.chat.counters["chat_rejected_bad_padding"] == 1
