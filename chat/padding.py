"""Padding: what is sealed grows to one of a few sizes, so a relay learns a bucket, not a length.

Every plaintext sealed end to end (chat content, key shares, control boxes, note
updates and snapshot parts) is padded before sealing to the smallest bucket that
holds it plus one byte::

    padded = plaintext || 0x80 || 0x00 * (bucket - len(plaintext) - 1)

    BUCKETS = 256, 512, 1 KiB, 2 KiB, … 64 KiB (powers of two), then 120 KiB

The pad (ISO/IEC 7816-4 style) is unambiguous: strip the trailing zeros, the
last byte left must be 0x80, and the padded length must be a bucket. Anything
else is refused (:class:`ChatError`, reason ``bad_padding``): it can only come
from a key holder, since padding is checked after the AEAD or box opened.

Overhead: a plaintext of n bytes takes less than 2n + 256 bytes (worst case just
past a power of two; about 1.4x on average over sizes spread evenly on a log
scale). Most chat messages and key shares fit 256 bytes. The last bucket is
120 KiB, not 128, so that a padded payload still fits an envelope's 128 KiB
with its header fields (a note snapshot's part is 96 KiB and pads to it).
"""

from __future__ import annotations

from mesh.errors import ChatError, UsageError

#: padded sizes, smallest first
BUCKETS: tuple[int, ...] = (*(256 << i for i in range(9)), 120 * 1024)
#: the most plaintext one sealed payload may hold (the pad takes at least one byte)
MAX_PLAINTEXT = BUCKETS[-1] - 1
_MARK = 0x80


def bucket(size: int) -> int:
    """The padded size of `size` bytes of plaintext; UsageError when none holds it."""
    for b in BUCKETS:
        if size < b:
            return b
    raise UsageError(f"{size} bytes is too large to seal (at most {MAX_PLAINTEXT})")


def pad(data: bytes) -> bytes:
    """`data` padded to its bucket."""
    size = bucket(len(data))
    return data + bytes([_MARK]) + bytes(size - len(data) - 1)


def unpad(data: bytes) -> bytes:
    """The plaintext inside a padded block; ChatError(reason="bad_padding") when malformed."""
    if len(data) not in BUCKETS:
        raise ChatError(f"a padded block of {len(data)} bytes is no bucket", reason="bad_padding")
    end = len(data.rstrip(b"\x00")) - 1
    if end < 0 or data[end] != _MARK:
        raise ChatError("malformed padding", reason="bad_padding")
    return data[:end]
