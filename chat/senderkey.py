"""Sender keys: each member's hash ratchet for room content, and the AEAD around each message.

A member's chain key ``ck_i`` yields the key of its i-th message and the next
chain key, both with keyed BLAKE2b::

    mk_i     = BLAKE2b-256(key=ck_i, msg=0x01, person="mn-sk-msg-v1")
    ck_{i+1} = BLAKE2b-256(key=ck_i, msg=0x02, person="mn-sk-chain-v1")

A sender's chain does not run on for ever: the first message after
ROTATE_MESSAGES messages or ROTATE_SECONDS on one chain starts a fresh random
``ck`` at its index (:func:`rotation_due`), shared again with every member, so a
leaked chain key opens at most that many messages or that much time.

Only ``ck`` at the next unused index is kept, so a stolen chain key reads
nothing already received (forward secrecy within an epoch). Message keys of
messages that have not arrived yet are kept aside, a bounded number of them,
so messages may arrive out of order. Content is sealed with
XChaCha20-Poly1305, the header (room, epoch, index, author) as associated data,
after padding to a size bucket (:mod:`chat.padding`). Padded seals are bound to
associated data prefixed with ``PADDED_AAD``; a seal made before padding existed
(an outbox item or a room-log copy from an older version) is still opened under
the bare associated data, unpadded.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.utils

from chat.padding import pad, unpad
from mesh.errors import ChatError

#: message keys kept for messages that have not arrived yet, per chain at most
MAX_SKIP = 1000
NONCE_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#: a sender draws a fresh chain key after this many messages on one chain …
ROTATE_MESSAGES = 100
#: … or this long after it drew the current one, whichever comes first
ROTATE_SECONDS = 7 * 24 * 3600.0
#: what the associated data of a padded seal starts with (tells padded from legacy seals)
PADDED_AAD = b"mn-padded-v1"


def message_key(chain_key: bytes) -> bytes:
    return hashlib.blake2b(b"\x01", key=chain_key, digest_size=32, person=b"mn-sk-msg-v1").digest()


def next_chain_key(chain_key: bytes) -> bytes:
    return hashlib.blake2b(
        b"\x02", key=chain_key, digest_size=32, person=b"mn-sk-chain-v1"
    ).digest()


def new_chain_key() -> bytes:
    return nacl.utils.random(32)


def rotation_due(sent: int, age: float | None) -> bool:
    """Whether a sending chain that gave `sent` message keys and was drawn `age` seconds ago
    (None: before chains were dated) must give way to a fresh one."""
    return age is None or sent >= ROTATE_MESSAGES or age >= ROTATE_SECONDS


@dataclass(frozen=True)
class Chain:
    """A chain at index `index`: `chain_key` is ck_index, the next key not yet used."""

    chain_key: bytes
    index: int

    def advance(self) -> tuple[bytes, Chain]:
        """Return the message key for `index` and the chain one step on."""
        return message_key(self.chain_key), Chain(next_chain_key(self.chain_key), self.index + 1)

    def reaches(self, index: int) -> bool:
        """Whether the key of message `index` may be derived from this chain (not behind
        it, at most MAX_SKIP ahead)."""
        return 0 <= index - self.index <= MAX_SKIP

    def at(self, index: int) -> Chain:
        """The chain at `index` (>= self.index): chain keys only, no message keys."""
        chain_key = self.chain_key
        for _ in range(index - self.index):
            chain_key = next_chain_key(chain_key)
        return Chain(chain_key, index)

    def key_for(self, index: int) -> tuple[bytes, Chain, dict[int, bytes]]:
        """Return the key of message `index` (>= self.index), the chain after it, and skipped keys.

        Raises ChatError when `index` is behind the chain (its key was used or
        skipped already) or more than MAX_SKIP ahead.
        """
        if index < self.index:
            raise ChatError(
                f"message index {index} is behind the chain ({self.index})", reason="other"
            )
        if index - self.index > MAX_SKIP:
            raise ChatError(f"message index {index} is too far ahead of the chain", reason="other")
        skipped: dict[int, bytes] = {}
        chain = self
        while chain.index < index:
            key, after = chain.advance()
            skipped[chain.index] = key
            chain = after
        key, chain = chain.advance()
        return key, chain, skipped

    def keys_until(self, index: int) -> dict[int, bytes]:
        """The keys of messages self.index .. index - 1 (none if more than MAX_SKIP)."""
        if index - self.index > MAX_SKIP:
            return {}
        keys: dict[int, bytes] = {}
        chain = self
        while chain.index < index:
            keys[chain.index], chain = chain.advance()
        return keys


def associated_data(conv: bytes, epoch: int, index: int, author: bytes) -> bytes:
    return conv + struct.pack(">II", epoch, index) + author


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Pad, encrypt with XChaCha20-Poly1305 under a random nonce; return nonce || ciphertext."""
    nonce = nacl.utils.random(NONCE_SIZE)
    return nonce + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        pad(plaintext), PADDED_AAD + aad, nonce, key
    )


def _decrypt(key: bytes, sealed: bytes, aad: bytes) -> bytes | None:
    try:
        return bytes(
            nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[NONCE_SIZE:], aad, sealed[:NONCE_SIZE], key
            )
        )
    except nacl.exceptions.CryptoError:
        return None


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Decrypt and unpad what :func:`seal` made; raise ChatError if it was tampered with,
    misaddressed (reason ``tampered``) or badly padded (``bad_padding``)."""
    if len(sealed) < NONCE_SIZE + 16:
        raise ChatError("sealed message too short", reason="other")
    padded = _decrypt(key, sealed, PADDED_AAD + aad)
    if padded is not None:
        return unpad(padded)
    legacy = _decrypt(key, sealed, aad)  # sealed before padding existed
    if legacy is None:
        raise ChatError("message failed authentication", reason="tampered")
    return legacy
