"""Pairwise boxes: crypto_box between two peers' static X25519 keys, for control traffic.

Key shares travel boxed too: ``[conv_id, epoch, chain_key, index]`` (:func:`open_share`).
"""

from __future__ import annotations

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.public

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


def box(identity: Identity, peer: bytes, plaintext: bytes) -> bytes:
    """Encrypt for `peer` (its Ed25519 key): random nonce || ciphertext."""
    return bytes(_box(identity, peer).encrypt(plaintext))


def unbox(identity: Identity, peer: bytes, ciphertext: bytes) -> bytes:
    """Open what `peer` boxed for us; raise ChatError if it fails."""
    try:
        return bytes(_box(identity, peer).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise ChatError("a pairwise box failed to open", reason="bad_box") from exc


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
