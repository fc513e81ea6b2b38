"""The payload of a NOTE envelope: its fields, the associated data, sealing and opening.

Payload: msgpack ``[note_id (32 bytes), epoch, sealed update]``; a snapshot
part (the note's whole state, cut into parts) adds ``[part, parts, covers]``,
the per-author sequence vector the state includes, in clear: relays read it
(:class:`NoteReader`, given to the room log: see mesh/storage/covering.py).
A note id binds the note to its room for good: 16 random bytes, then the
first 16 bytes of BLAKE2b-256 over (room id, those random bytes)
(:func:`new_note_id`, :func:`belongs`), so a note id copied into another
room's envelope is refused by anyone, key or no key.
The update is sealed with the room's document key of its epoch
(XChaCha20-Poly1305); the header — room, note, epoch, author, sequence, and a
snapshot part's fourth field — is the associated data.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.bindings

from chat.padding import MAX_PLAINTEXT, bucket
from chat.senderkey import NONCE_SIZE, open_sealed, seal
from crdt.errors import NoteUpdateError
from mesh.storage.inventory import MAX_INVENTORY_AUTHORS
from mesh.wire.envelope import MAX_PAYLOAD, EnvelopeType

TAG_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
#: parts one snapshot has at most
MAX_SNAPSHOT_PARTS = 64


@dataclass(frozen=True)
class SnapshotHeader:
    """The clear part of a snapshot envelope: which part it is and what the state covers."""

    part: int
    parts: int
    covers: dict[bytes, int]

    def encode(self) -> list[Any]:
        return [self.part, self.parts, self.covers]

    @classmethod
    def decode(cls, value: object) -> SnapshotHeader:
        """Raises ValueError for anything but [part, parts, {32-byte author: seq}]."""
        if not (isinstance(value, list) and len(value) == 3):
            raise ValueError("malformed snapshot header")
        part, parts, covers = value
        if not (
            isinstance(part, int)
            and isinstance(parts, int)
            and 0 <= part < parts <= MAX_SNAPSHOT_PARTS
            and isinstance(covers, dict)
            and len(covers) <= MAX_INVENTORY_AUTHORS
            and all(
                isinstance(a, bytes) and len(a) == 32 and isinstance(n, int) and 0 <= n < 2**63
                for a, n in covers.items()
            )
        ):
            raise ValueError("malformed snapshot header")
        return cls(part, parts, dict(covers))


def note_header(payload: bytes) -> tuple[bytes, SnapshotHeader | None]:
    """(note id, snapshot header or None) of a NOTE payload; ValueError when malformed."""
    try:
        fields = msgpack.unpackb(payload)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ValueError("malformed note payload") from exc
    if not isinstance(fields, list) or len(fields) not in (3, 4):
        raise ValueError("malformed note payload")
    note = fields[0]
    if not (isinstance(note, bytes) and len(note) == 32):
        raise ValueError("malformed note payload")
    return note, (SnapshotHeader.decode(fields[3]) if len(fields) == 4 else None)


class NoteReader:
    """What the room log learns of NOTE payloads (a :class:`mesh.storage.covering.SnapshotReader`):
    the note and snapshot header of each, and whose snapshots this node takes."""

    envelope_type = EnvelopeType.NOTE

    def __init__(self, authors: Callable[[bytes], list[bytes]] | None = None) -> None:
        """`authors` names, per room, whose snapshots we take (none without it: a relay)."""
        self._authors = authors

    def read(self, payload: bytes) -> tuple[bytes, SnapshotHeader | None]:
        return note_header(payload)

    def authors(self, room: bytes) -> list[bytes]:
        return self._authors(room) if self._authors is not None else []


@dataclass(frozen=True)
class Opened:
    """A NOTE envelope, checked and decrypted, not yet applied."""

    conv_id: str
    note_id: str
    author_id: str
    seq: int
    update: bytes
    snapshot: SnapshotHeader | None = None  # a part of a snapshot (update = its chunk)
    parts: tuple[int, ...] = ()  # a whole snapshot: the sequence numbers of its parts


@dataclass(frozen=True)
class Fields:
    """A NOTE payload's fields, decoded and checked, still sealed."""

    note: bytes
    epoch: int
    sealed: bytes
    snapshot: SnapshotHeader | None


def new_note_id(room: bytes, nonce: bytes | None = None) -> bytes:
    """A fresh note id of `room` (random unless `nonce`, 16 bytes, is given)."""
    nonce = os.urandom(16) if nonce is None else nonce
    return nonce + hashlib.blake2b(room + nonce, digest_size=32).digest()[:16]


def belongs(room: bytes, note: bytes) -> bool:
    """Whether a note id was made for `room`."""
    return len(note) == 32 and new_note_id(room, note[:16]) == note


def aad(
    room: bytes,
    note: bytes,
    epoch: int,
    author: bytes,
    seq: int,
    snapshot: SnapshotHeader | None = None,
) -> bytes:
    """The associated data an update of this header is sealed under."""
    data = room + note + struct.pack(">I", epoch) + author + struct.pack(">Q", seq)
    if snapshot is not None:
        data += b"snapshot" + bytes(msgpack.packb(snapshot.encode()))
    return data


def fits(note: bytes, epoch: int, size: int) -> bool:
    """Whether an update of `size` bytes, padded and sealed, fits one envelope's payload."""
    if size > MAX_PLAINTEXT:
        return False
    sealed_size = NONCE_SIZE + bucket(size) + TAG_SIZE
    return len(msgpack.packb([note, epoch, bytes(sealed_size)])) <= MAX_PAYLOAD - 64


def seal_payload(
    key: bytes,
    room: bytes,
    note: bytes,
    epoch: int,
    author: bytes,
    seq: int,
    update: bytes,
    snapshot: SnapshotHeader | None = None,
) -> bytes:
    """An update (or a snapshot's part) sealed under `key`, as a NOTE payload."""
    sealed = seal(key, update, aad(room, note, epoch, author, seq, snapshot))
    if snapshot is None:
        return bytes(msgpack.packb([note, epoch, sealed]))
    return bytes(msgpack.packb([note, epoch, sealed, snapshot.encode()]))


def decode_payload(payload: bytes) -> Fields:
    """A NOTE payload's fields; raises NoteUpdateError for anything malformed."""
    try:
        fields = msgpack.unpackb(payload)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise NoteUpdateError("malformed note update") from exc
    if not (isinstance(fields, list) and len(fields) in (3, 4)):
        raise NoteUpdateError("malformed note update")
    note, epoch, sealed = fields[:3]
    if not (
        isinstance(note, bytes)
        and len(note) == 32
        and isinstance(epoch, int)
        and 0 <= epoch < 2**32
        and isinstance(sealed, bytes)
    ):
        raise NoteUpdateError("malformed note update")
    snapshot = None
    if len(fields) == 4:
        try:
            snapshot = SnapshotHeader.decode(fields[3])
        except ValueError as exc:
            raise NoteUpdateError("malformed note snapshot") from exc
    return Fields(note, epoch, sealed, snapshot)


def open_payload(key: bytes, room: bytes, author: bytes, seq: int, fields: Fields) -> bytes:
    """The update sealed in a payload (raises what `open_sealed` raises when it does not open)."""
    data = aad(room, fields.note, fields.epoch, author, seq, fields.snapshot)
    return open_sealed(key, fields.sealed, data)
