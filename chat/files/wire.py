"""The FILE payloads peers swap to fetch an attachment's chunks (envelope type FILE).

Each is a msgpack array whose first element names it; ``root`` is the file's
hash-tree root (its id), 32 bytes::

    QUERY   [1, root]                          which chunks of this file do you hold?
    HAVE    [2, root, chunks, bitfield|nil]    these (nil: all of them)
    WANT    [3, root, [[start, count], ...]]   send me these chunks (at most MAX_WANT)
    CHUNK   [4, root, index, sealed, proof]    one sealed chunk and its sibling hashes
    REFUSE  [5, root, reason]                  not for you, not held, or not now

Relays see these in the clear, like the envelope around them: a file id, chunk
numbers and sealed bytes, never a name or a key (docs/files.md). Decoding is
strict and raises ChatError(reason="malformed").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from chat.files.format import CHUNK_SIZE, HASH_SIZE, MAC_SIZE, depth
from mesh.errors import ChatError

QUERY, HAVE, WANT, CHUNK, REFUSE = 1, 2, 3, 4, 5
#: chunks one WANT may ask for
MAX_WANT = 64
MAX_CHUNKS = 1 << 20
REASONS = ("not_held", "not_member", "busy", "over_budget")


@dataclass(frozen=True)
class Query:
    root: bytes

    def encode(self) -> bytes:
        return _pack([QUERY, self.root])


@dataclass(frozen=True)
class Have:
    root: bytes
    chunks: int
    #: bit i (byte i // 8, bit 7 - i % 8) set: chunk i is held; None: every chunk is
    bitfield: bytes | None

    def encode(self) -> bytes:
        return _pack([HAVE, self.root, self.chunks, self.bitfield])

    def held(self) -> set[int] | None:
        if self.bitfield is None:
            return None
        return {i for i in range(self.chunks) if self.bitfield[i // 8] >> (7 - i % 8) & 1}


@dataclass(frozen=True)
class Want:
    root: bytes
    ranges: tuple[tuple[int, int], ...]

    def encode(self) -> bytes:
        return _pack([WANT, self.root, [list(r) for r in self.ranges]])

    def indices(self) -> list[int]:
        return [i for start, count in self.ranges for i in range(start, start + count)]

    @classmethod
    def of(cls, root: bytes, indices: list[int]) -> Want:
        """A WANT for `indices`, as few ranges as they allow."""
        ranges: list[list[int]] = []
        for i in sorted(set(indices)):
            if ranges and ranges[-1][0] + ranges[-1][1] == i:
                ranges[-1][1] += 1
            else:
                ranges.append([i, 1])
        return cls(root, tuple((s, c) for s, c in ranges))


@dataclass(frozen=True)
class Chunk:
    root: bytes
    index: int
    sealed: bytes
    proof: tuple[bytes, ...]

    def encode(self) -> bytes:
        return _pack([CHUNK, self.root, self.index, self.sealed, list(self.proof)])


@dataclass(frozen=True)
class Refuse:
    root: bytes
    reason: str

    def encode(self) -> bytes:
        return _pack([REFUSE, self.root, self.reason])


Message = Query | Have | Want | Chunk | Refuse


def _pack(body: list[Any]) -> bytes:
    packed: bytes = msgpack.packb(body)
    return packed


def bitfield(chunks: int, held: set[int]) -> bytes:
    """The HAVE bitfield of `held` among `chunks` chunks."""
    field = bytearray(-(-chunks // 8))
    for i in held:
        field[i // 8] |= 0x80 >> (i % 8)
    return bytes(field)


def _malformed() -> ChatError:
    return ChatError("malformed file message", "malformed")


def decode(data: bytes) -> Message:
    """One FILE payload, checked field by field."""
    try:
        body: Any = msgpack.unpackb(data)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise _malformed() from exc
    if not (
        isinstance(body, list)
        and len(body) >= 2
        and isinstance(body[1], bytes)
        and len(body[1]) == HASH_SIZE
    ):
        raise _malformed()
    kind, root, rest = body[0], body[1], body[2:]
    if kind == QUERY and not rest:
        return Query(root)
    if kind == HAVE and len(rest) == 2:
        chunks, field = rest
        if not (isinstance(chunks, int) and 0 < chunks <= MAX_CHUNKS):
            raise _malformed()
        if field is not None and not (isinstance(field, bytes) and len(field) == -(-chunks // 8)):
            raise _malformed()
        return Have(root, chunks, field)
    if kind == WANT and len(rest) == 1 and isinstance(rest[0], list):
        ranges = []
        for item in rest[0]:
            if not (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(n, int) for n in item)
                and 0 <= item[0] < MAX_CHUNKS
                and 0 < item[1] <= MAX_WANT
            ):
                raise _malformed()
            ranges.append((item[0], item[1]))
        if not ranges or sum(c for _, c in ranges) > MAX_WANT:
            raise _malformed()
        return Want(root, tuple(ranges))
    if kind == CHUNK and len(rest) == 3:
        index, sealed, proof = rest
        if not (
            isinstance(index, int)
            and 0 <= index < MAX_CHUNKS
            and isinstance(sealed, bytes)
            and MAC_SIZE <= len(sealed) <= CHUNK_SIZE + MAC_SIZE
            and isinstance(proof, list)
            and len(proof) <= depth(MAX_CHUNKS)
            and all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in proof)
        ):
            raise _malformed()
        return Chunk(root, index, sealed, tuple(proof))
    if kind == REFUSE and len(rest) == 1 and rest[0] in REASONS:
        return Refuse(root, rest[0])
    raise _malformed()
