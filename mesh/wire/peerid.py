"""Peer ids: how a 32-byte Ed25519 public key is named, and the safety number of two keys.

A peer id is the key in lowercase RFC 4648 base32 without padding (52
characters). Naming a key needs no cryptography, so this module imports no
PyNaCl: a read of the database (``meshnotes history``) names its peers without
loading it. :mod:`mesh.wire.identity` re-exports all of it.
"""

from __future__ import annotations

import base64
import functools

from mesh.errors import UsageError

PEER_ID_LENGTH = 52


def encode_peer_id(public_key: bytes) -> str:
    """Return the peer id (52 lowercase base32 characters) of a 32-byte public key."""
    if len(public_key) != 32:
        raise UsageError(f"a public key has 32 bytes, not {len(public_key)}")
    return _peer_id(bytes(public_key))


@functools.lru_cache(maxsize=4096)
def _peer_id(public_key: bytes) -> str:
    # the same few keys (rooms, authors, neighbours) are named for every envelope kept
    return base64.b32encode(public_key).decode("ascii").rstrip("=").lower()


def decode_peer_id(peer_id: str) -> bytes:
    """Return the 32-byte public key named by a full peer id; raise UsageError if it is not one."""
    text = peer_id.strip()
    if len(text) != PEER_ID_LENGTH:
        raise UsageError(
            f"a peer id has {PEER_ID_LENGTH} characters, this one has {len(text)}: {peer_id!r}"
        )
    try:
        raw = base64.b32decode(text.upper() + "====", casefold=False)
    except ValueError as exc:
        raise UsageError(f"not a peer id (base32 expected): {peer_id!r}") from exc
    if len(raw) != 32 or encode_peer_id(raw) != text.lower():
        raise UsageError(f"not a peer id: {peer_id!r}")
    return raw


def short_id(peer_id: str) -> str:
    """Return the first 8 characters of a peer id, for display."""
    return peer_id[:8]


def safety_number(key_a: bytes, key_b: bytes) -> str:
    """Return the safety number two peers compare out of band to verify each other's keys.

    It is symmetric (both sides compute the same code) and made of six groups of
    five digits, derived with BLAKE2b from both public keys.
    """
    import hashlib  # only the contacts' views show it: a read of history needs no hashing

    low, high = sorted((key_a, key_b))
    digest = hashlib.blake2b(low + high, digest_size=30, person=b"meshnotes-sn-v1").digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 30, 5)]
    return " ".join(f"{g:05d}" for g in groups)
