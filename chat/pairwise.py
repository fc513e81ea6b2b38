"""Pairwise boxes: crypto_box between two peers' static X25519 keys, for control traffic.

Key shares travel boxed too: ``[conv_id, epoch, chain_key, index]`` (:func:`open_share`).

What is boxed is padded to a size bucket first (:mod:`chat.padding`), behind one
marker byte, 0xC1: msgpack never starts with it, and every body boxed before
padding existed is msgpack, so such an older box (still in an outbox or a
mailbox) opens as it was.
"""

from __future__ import annotations

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.public

from chat.padding import pad, unpad
from chat.senderkey import Chain
from mesh.errors import ChatError
from mesh.wire.identity import Identity


def _box(identity: Identity, peer: bytes) -> nacl.public.Box:
    try:
        peer_x25519 = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(peer)
    except (nacl.exceptions.CryptoError, ValueError, RuntimeError) as exc:
        raise ChatError("not a valid peer key", reason="other") from exc
    return nacl.public.Box(
        nacl.public.PrivateKey(identity.x25519_private_key), nacl.public.PublicKey(peer_x25519)
    )


#: the first byte of a padded box's plaintext ("never used" in msgpack)
PADDED = b"\xc1"


def box(identity: Identity, peer: bytes, plaintext: bytes) -> bytes:
    """Pad, then encrypt for `peer` (its Ed25519 key): random nonce || ciphertext."""
    return bytes(_box(identity, peer).encrypt(PADDED + pad(plaintext)))


def unbox(identity: Identity, peer: bytes, ciphertext: bytes) -> bytes:
    """Open and unpad what `peer` boxed for us; raise ChatError if it fails (reason
    ``bad_box``) or is badly padded (``bad_padding``)."""
    try:
        plaintext = bytes(_box(identity, peer).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise ChatError("a pairwise box failed to open", reason="bad_box") from exc
    if plaintext[:1] == PADDED:
        return unpad(plaintext[1:])
    return plaintext  # boxed before padding existed


def open_share(
    identity: Identity, author: bytes, share: bytes | None, conv: bytes, epoch: int, index: int
) -> Chain | None:
    """Open the chain key a message carries, and check it belongs to that message."""
    if share is None:
        return None
    try:
        s_conv, s_epoch, s_key, s_index = msgpack.unpackb(unbox(identity, author, share))
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ChatError("malformed key share", reason="malformed") from exc
    valid = (
        s_conv == conv
        and s_epoch == epoch
        and isinstance(s_key, bytes)
        and len(s_key) == 32
        and isinstance(s_index, int)
        and 0 <= s_index <= index
    )
    if not valid:
        raise ChatError("key share does not match its message", reason="bad_key_share")
    return Chain(s_key, s_index)
