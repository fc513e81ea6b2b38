"""Bundles: many CHAT payloads for one peer in one signed envelope.

A member back after days has thousands of items waiting for it in its
contacts' outboxes. Sent one envelope each, every item costs a signature at
the author, and at the member a signature check, a link open, a decode and a
routing decision. A ``BUNDLE`` envelope carries up to MAX_ITEMS of them, so
those costs are paid once per bundle.

Payload (msgpack): an array of 2..MAX_ITEMS byte strings, each the payload a
``CHAT`` envelope would carry. Every item is the bundle's author's: the
bundle's signature covers it, and it is read as a ``CHAT`` envelope with the
bundle's header (author, destination, time, flags). There is no author field
to lie in; an item copied from someone else's envelope is read as the bundle
author's and fails the chat layer's checks (its sealed content names its
author in its associated data).

Each item keeps an id of its own, :func:`item_id`: BLAKE2b-256, personalised,
of the author, the destination and the item. It does not change from one try
to the next (the sender records it once per item, not once per try), and it
is what a receipt names; the chat layer drops duplicates by the content's own
place in its conversation, as for any envelope.
"""

from __future__ import annotations

import hashlib

import msgpack

from mesh.errors import EnvelopeError
from mesh.wire.envelope import MAX_PAYLOAD, DestKind, Envelope, EnvelopeType, signed_part

#: items one bundle carries at most (a receipt names up to 1024 ids)
MAX_ITEMS = 256
#: payload bytes a sender packs into one bundle at most (the envelope bound is MAX_PAYLOAD)
BUNDLE_BYTES = 60 * 1024
#: msgpack's overhead for one item (a bin 16 or bin 32 header) and for the array
ITEM_OVERHEAD = 5
ARRAY_OVERHEAD = 5

_PERSON = b"mn-bundle-item"


def item_id(author: bytes, dest: bytes, payload: bytes) -> bytes:
    """The id of one bundled item: the same on every try of it."""
    return hashlib.blake2b(author + dest + payload, digest_size=32, person=_PERSON).digest()


def pack(payloads: list[bytes]) -> bytes:
    """A bundle's payload (the caller keeps it within BUNDLE_BYTES and MAX_ITEMS)."""
    return bytes(msgpack.packb(payloads))


def packed_size(payload: bytes) -> int:
    """What one item adds to a bundle's payload, at most."""
    return len(payload) + ITEM_OVERHEAD


def unpack(bundle: Envelope) -> list[Envelope]:
    """The CHAT envelopes a verified BUNDLE carries, each with its :func:`item_id`.

    Raises EnvelopeError for a bundle that is not to a peer, not an array of
    2..MAX_ITEMS byte strings, or that repeats an item; nothing of it is taken then.
    """
    if bundle.type != EnvelopeType.BUNDLE or bundle.dest_kind != DestKind.PEER:
        raise EnvelopeError("a bundle is a BUNDLE envelope to a peer")
    try:
        items = msgpack.unpackb(bundle.payload, max_array_len=MAX_ITEMS + 1)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise EnvelopeError("malformed bundle") from exc
    if not isinstance(items, list) or not all(isinstance(item, bytes) for item in items):
        raise EnvelopeError("malformed bundle")
    if not 2 <= len(items) <= MAX_ITEMS:
        raise EnvelopeError(f"a bundle carries 2..{MAX_ITEMS} items, not {len(items)}")
    if len(set(items)) != len(items):
        raise EnvelopeError("a bundle repeats an item")
    return [_carried(bundle, item) for item in items]


def _carried(bundle: Envelope, payload: bytes) -> Envelope:
    """One item of `bundle` as the CHAT envelope it stands for. Its signature field is the
    bundle's, which covers it only as part of the bundle: it is never sent on."""
    if len(payload) > MAX_PAYLOAD:  # cannot happen inside a bundle's bound; kept for decode
        raise EnvelopeError("bundled item too long")
    signed = signed_part(
        bundle.version,
        EnvelopeType.CHAT,
        bundle.flags,
        bundle.hop_limit,
        bundle.author,
        bundle.dest_kind,
        bundle.dest,
        bundle.timestamp_ms,
        bundle.seq,
        payload,
    )
    envelope = Envelope(
        type=EnvelopeType.CHAT,
        author=bundle.author,
        dest_kind=bundle.dest_kind,
        dest=bundle.dest,
        timestamp_ms=bundle.timestamp_ms,
        seq=bundle.seq,
        payload=payload,
        signature=bundle.signature,
        flags=bundle.flags,
        hop_limit=bundle.hop_limit,
        signed_bytes=signed,
    )
    envelope.__dict__["_message_id"] = item_id(bundle.author, bundle.dest, payload)
    return envelope
