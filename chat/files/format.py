"""The attachment format: chunk encryption, the hash tree over the ciphertext, the descriptor.

A file is cut into chunks of :data:`CHUNK_SIZE` bytes (the last may be
shorter; an empty file is one empty chunk). Chunk ``i`` is sealed with
XSalsa20-Poly1305 (``crypto_secretbox``) under the file's own fresh key with
the nonce ``i`` as 24 big-endian bytes: a key seals one file only, so no
nonce repeats. The hash tree (BitTorrent v2's shape, BLAKE2b-256) is built
over the sealed chunks::

    leaf(c)      = BLAKE2b-256(0x00 || c)
    node(l, r)   = BLAKE2b-256(0x01 || l || r)

with the leaves padded with 32 zero bytes up to a power of two. Its root is
the file's id. A chunk travels with its proof: the sibling hashes from its
leaf up to the root, so any holder's chunk is checked before it is kept.

The descriptor travels inside a chat message (sealed like any other content)
and is all a member needs to fetch, check and open the file: name, size, media
type, root and key. Sans-I/O: bytes in, bytes out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.bindings
import nacl.exceptions

from mesh.errors import ChatError, UsageError

#: plaintext bytes per chunk; a sealed chunk is MAC_SIZE bytes longer
CHUNK_SIZE = 64 * 1024
MAC_SIZE = 16
KEY_SIZE = 32
HASH_SIZE = 32
#: the largest file (2^32 chunks would overflow nothing, but no proof may exceed an envelope)
MAX_FILE_SIZE = 64 * 1024**3
MAX_NAME = 255
MAX_MIME = 127
_ZERO = bytes(HASH_SIZE)


def chunk_count(size: int) -> int:
    """How many chunks a file of `size` bytes has (an empty file has one, empty)."""
    return max(1, -(-size // CHUNK_SIZE))


def sealed_size(size: int, index: int) -> int:
    """The length of sealed chunk `index` of a file of `size` bytes."""
    start = index * CHUNK_SIZE
    return min(CHUNK_SIZE, max(0, size - start)) + MAC_SIZE


def _nonce(index: int) -> bytes:
    return index.to_bytes(nacl.bindings.crypto_secretbox_NONCEBYTES, "big")


def seal_chunk(key: bytes, index: int, plain: bytes) -> bytes:
    """Chunk `index` sealed under the file's key."""
    return nacl.bindings.crypto_secretbox(plain, _nonce(index), key)


def open_chunk(key: bytes, index: int, sealed: bytes) -> bytes:
    """The plaintext of a sealed chunk; ChatError(reason="bad_chunk") if it does not open."""
    try:
        return nacl.bindings.crypto_secretbox_open(sealed, _nonce(index), key)
    except nacl.exceptions.CryptoError as exc:
        raise ChatError(f"chunk {index} does not open with the file's key", "bad_chunk") from exc


def leaf(sealed: bytes) -> bytes:
    return hashlib.blake2b(b"\x00" + sealed, digest_size=HASH_SIZE).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.blake2b(b"\x01" + left + right, digest_size=HASH_SIZE).digest()


def depth(chunks: int) -> int:
    """The number of sibling hashes in a proof for a file of `chunks` chunks."""
    return (chunks - 1).bit_length()


class HashTree:
    """The whole tree over a file's leaves: its root, and a proof for any chunk."""

    def __init__(self, leaves: list[bytes]) -> None:
        if not leaves:
            raise UsageError("a hash tree needs at least one leaf")
        width = 1 << depth(len(leaves))
        level = list(leaves) + [_ZERO] * (width - len(leaves))
        self.levels = [level]
        while len(level) > 1:
            level = [_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            self.levels.append(level)
        self.chunks = len(leaves)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """The sibling hashes from leaf `index` up to (not including) the root."""
        if not 0 <= index < self.chunks:
            raise UsageError(f"no chunk {index} in a file of {self.chunks}")
        return [level[(index >> d) ^ 1] for d, level in enumerate(self.levels[:-1])]


def verify(root: bytes, chunks: int, index: int, sealed: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `sealed` is chunk `index` of the file whose tree has `root`."""
    return verify_leaf(root, chunks, index, leaf(sealed), proof)


def verify_leaf(
    root: bytes, chunks: int, index: int, digest: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `digest` is leaf `index` of the tree with `root` (for a caller that keeps the
    leaf: hashing a 64 KiB chunk costs more than the rest of its check)."""
    if not 0 <= index < chunks or len(proof) != depth(chunks):
        return False
    for d, sibling in enumerate(proof):
        if len(sibling) != HASH_SIZE:
            return False
        digest = _node(sibling, digest) if (index >> d) & 1 else _node(digest, sibling)
    return digest == root


@dataclass(frozen=True)
class Descriptor:
    """What the announcing chat message carries: enough to fetch, check and open the file."""

    name: str
    size: int
    mime: str
    root: bytes
    key: bytes

    @property
    def file_id(self) -> str:
        return self.root.hex()

    @property
    def chunks(self) -> int:
        return chunk_count(self.size)

    def encode(self) -> bytes:
        packed: bytes = msgpack.packb(
            {"v": 1, "n": self.name, "z": self.size, "m": self.mime, "r": self.root, "k": self.key}
        )
        return packed

    @classmethod
    def decode(cls, data: bytes) -> Descriptor:
        """A peer's descriptor, checked; ChatError(reason="malformed") for anything else."""
        try:
            body: Any = msgpack.unpackb(data)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError("malformed attachment", "malformed") from exc
        if not (
            isinstance(body, dict)
            and body.get("v") == 1
            and isinstance(body.get("n"), str)
            and 0 < len(body["n"]) <= MAX_NAME
            and isinstance(body.get("z"), int)
            and 0 <= body["z"] <= MAX_FILE_SIZE
            and isinstance(body.get("m"), str)
            and len(body["m"]) <= MAX_MIME
            and isinstance(body.get("r"), bytes)
            and len(body["r"]) == HASH_SIZE
            and isinstance(body.get("k"), bytes)
            and len(body["k"]) == KEY_SIZE
        ):
            raise ChatError("malformed attachment", "malformed")
        return cls(safe_name(body["n"]), body["z"], body["m"], body["r"], body["k"])


def safe_name(name: str) -> str:
    """A file name with no directory in it and nothing a terminal would act on."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    if cleaned in ("", ".", ".."):
        return "attachment"
    return cleaned[:MAX_NAME]
