"""TABLE payloads: the stored announces a node sends a neighbour, many to one envelope.

On link-up (and when a young link settles) a node passes its path table as
the announces it stored, packed into TABLE envelopes (neighbour-only, hop
limit 1). Each entry is its length, big-endian u16, then one encoded
ANNOUNCE; the receiver handles every entry as if it had come alone.
"""

from __future__ import annotations

import struct

from mesh.errors import EnvelopeError
from mesh.wire.envelope import MAX_PAYLOAD

#: a TABLE entry: its length (big-endian), then one encoded ANNOUNCE
_ENTRY = struct.Struct(">H")


def pack_table(frames: list[bytes]) -> list[bytes]:
    """TABLE payloads carrying `frames` (encoded announces), each within MAX_PAYLOAD."""
    payloads: list[bytes] = []
    part: list[bytes] = []
    size = 0
    for frame in frames:
        need = _ENTRY.size + len(frame)
        if part and size + need > MAX_PAYLOAD:
            payloads.append(b"".join(part))
            part, size = [], 0
        part += (_ENTRY.pack(len(frame)), frame)
        size += need
    if part:
        payloads.append(b"".join(part))
    return payloads


def unpack_table(payload: bytes) -> list[bytes]:
    """The frames of a TABLE payload; EnvelopeError if the entries do not fill it exactly."""
    frames: list[bytes] = []
    at, end = 0, len(payload)
    while at < end:
        if at + _ENTRY.size > end:
            raise EnvelopeError("truncated table entry")
        (size,) = _ENTRY.unpack_from(payload, at)
        at += _ENTRY.size
        if size == 0 or at + size > end:
            raise EnvelopeError("table entry overruns the payload")
        frames.append(payload[at : at + size])
        at += size
    return frames
