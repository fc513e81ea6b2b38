"""Inventories: the INVENTORY payload two neighbours swap to learn what the other's room logs lack.

Payload (msgpack): ``{room (32 bytes): entry}``, one entry per room, at most
MAX_INVENTORY_ROOMS rooms. An entry is ``{author (32 bytes): n}``, the asker's
vector (it holds that author's envelopes 1..n of the room), plus two optional
keys that are not 32 bytes long, so that a node that knows neither skips them:

- ``SNAPSHOT_AUTHORS``: ``[author, ...]``, whose snapshots the asker takes
  (see mesh/storage/covering.py);
- ``HELD``: ``{author: [first, last, first, last, ...]}``, the longest runs of
  sequence numbers it holds past its vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from mesh.wire.identity import encode_peer_id

#: rooms and authors one inventory names at most (it must fit in one envelope)
MAX_INVENTORY_ROOMS = 64
MAX_INVENTORY_AUTHORS = 64
#: the key, in a room's inventory entry, of the authors whose snapshots the asker takes
#: (not 32 bytes long, so a node that knows nothing of snapshots skips it)
SNAPSHOT_AUTHORS = b"snap"
#: the key, in a room's inventory entry, of the runs of sequence numbers held past the vector:
#: {author: [first, last, first, last, ...]} (not 32 bytes long either)
HELD = b"held"
#: runs one room's inventory entry names at most (the longest)
MAX_HELD_RANGES = 8

#: {author: highest n such that 1..n are all held}
Vector = dict[bytes, int]


@dataclass(frozen=True)
class Ask:
    """One room of an inventory: what the asker holds, whose snapshots it takes."""

    room: bytes
    have: dict[str, int]
    trusted: set[str]
    held: dict[str, list[tuple[int, int]]]


def entry(
    vector: Vector, runs: dict[bytes, list[tuple[int, int]]], trusted: list[bytes]
) -> dict[bytes, Any]:
    """One room's inventory entry: the vector (largest first), the snapshot authors and the
    longest held runs, within MAX_INVENTORY_AUTHORS keys."""
    trusted = trusted[:MAX_INVENTORY_AUTHORS]
    ordered = sorted(vector.items(), key=lambda kv: -kv[1])
    longest = sorted(
        ((author, run) for author, held in runs.items() for run in held),
        key=lambda item: item[1][0] - item[1][1],
    )[:MAX_HELD_RANGES]
    held: dict[bytes, list[int]] = {}
    for author, (first, last) in sorted(longest):
        held.setdefault(author, []).extend((first, last))
    named = MAX_INVENTORY_AUTHORS - bool(trusted) - bool(held)
    result: dict[bytes, Any] = dict(ordered[:named])
    if trusted:
        result[SNAPSHOT_AUTHORS] = list(trusted)
    if held:
        result[HELD] = held
    return result


def parse_inventory(payload: bytes) -> list[Ask]:
    """The rooms an INVENTORY payload asks about; ValueError (or msgpack's) when malformed."""
    body = msgpack.unpackb(payload, strict_map_key=False)
    if not isinstance(body, dict) or len(body) > MAX_INVENTORY_ROOMS:
        raise ValueError("malformed inventory")
    asks = []
    for room, theirs in body.items():
        if not isinstance(room, bytes) or len(room) != 32 or not isinstance(theirs, dict):
            raise ValueError("malformed inventory")
        if len(theirs) > MAX_INVENTORY_AUTHORS:
            raise ValueError("malformed inventory")
        have = {
            encode_peer_id(a): int(n)
            for a, n in theirs.items()
            if isinstance(a, bytes) and len(a) == 32 and isinstance(n, int)
        }
        trusted = theirs.get(SNAPSHOT_AUTHORS)
        trusted_ids = (
            {encode_peer_id(a) for a in trusted if isinstance(a, bytes) and len(a) == 32}
            if isinstance(trusted, list)
            else set()
        )
        asks.append(Ask(room, have, trusted_ids, _held(theirs)))
    return asks


def _held(theirs: dict[Any, Any]) -> dict[str, list[tuple[int, int]]]:
    """The runs an inventory entry says it holds past its vector (malformed ones ignored)."""
    value = theirs.get(HELD)
    if not isinstance(value, dict) or len(value) > MAX_INVENTORY_AUTHORS:
        return {}
    held = {}
    for author, runs in value.items():
        if (
            isinstance(author, bytes)
            and len(author) == 32
            and isinstance(runs, list)
            and len(runs) <= 2 * MAX_HELD_RANGES
            and all(isinstance(n, int) for n in runs)
        ):
            held[encode_peer_id(author)] = list(zip(runs[0::2], runs[1::2], strict=False))
    return held
