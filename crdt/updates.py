"""Yjs update bytes (v1): merging many, and telling whether a document holds one back.

pycrdt integrates what an update carries only once its dependencies are
in the document: structs whose left neighbour or earlier clocks are missing,
and deletions of items the document does not have yet, are held back inside
the document ("pending") and left out of ``doc.get_update()``. pycrdt does
not expose that pending state, so :func:`held_back` asks the other way round:
does the update carry anything past the document's state vector?
"""

from __future__ import annotations

from collections.abc import Callable

import pycrdt

from crdt.note import reraise_unless_decoding


def merge_many(updates: list[bytes], group: int = 64) -> bytes:
    """Merge updates into one, in groups: merging thousands at once costs ~15x more (measured)."""
    while len(updates) > 1:
        updates = [
            pycrdt.merge_updates(*updates[i : i + group])
            if len(updates[i : i + group]) > 1
            else updates[i]
            for i in range(0, len(updates), group)
        ]
    return updates[0]


def _varuints(data: bytes) -> list[int]:
    """Every unsigned LEB128 number in `data`, in order."""
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            values.append(value)
            value, shift = 0, 0
    return values


def state_map(state: bytes) -> dict[int, int]:
    """A Yjs state vector (varuint count, then client and clock pairs) as {client: clock}."""
    pairs = _varuints(state)[1:]
    return dict(zip(pairs[0::2], pairs[1::2], strict=False))


def _rest(update: bytes, state_vector: bytes) -> bytes | None:
    """What of `update` lies past `state_vector`: structs (a varuint count of clients first;
    0 = none), then the update's whole delete set; None when pycrdt cannot decode it."""
    try:
        return bytes(pycrdt.get_update(update, state_vector))
    except BaseException as exc:
        reraise_unless_decoding(exc)
        return None


def inserts_held_back(update: bytes, state_vector: bytes) -> bool:
    """Whether `update` has structs past `state_vector` (cheap: no deletion is looked at)."""
    rest = _rest(update, state_vector)
    return rest is None or not rest or rest[0] != 0


def _deletes_past(rest: bytes, state_vector: bytes) -> bool:
    """Whether a delete set (varuint clients, each client, ranges, then clock and length
    pairs) names an item past `state_vector`; True when it cannot be read."""
    have = state_map(state_vector)
    numbers = _varuints(rest)
    if not numbers:
        return True
    at = 1
    for _ in range(numbers[0]):
        if at + 1 >= len(numbers):
            return True
        client, ranges = numbers[at], numbers[at + 1]
        at += 2
        for _ in range(ranges):
            if at + 1 >= len(numbers):
                return True
            clock, length = numbers[at], numbers[at + 1]
            at += 2
            if clock + length > have.get(client, 0):
                return True
    return False


def waits_on_another_client(update: bytes, state_vector: bytes) -> bool:
    """Whether `update` is held back though the document has every earlier clock of its
    author: what it waits for is another client's item. (Merged updates of several
    clients count as such: only the first client's clock is read.)"""
    rest = _rest(update, state_vector)
    if rest is None or not rest or rest[0] == 0:
        return False
    # header: clients, then the first client's struct count, client id and first clock
    numbers = _varuints(rest[:48])
    if len(numbers) < 4:
        return False
    clients, _, client, clock = numbers[:4]
    return clients > 1 or clock <= state_map(state_vector).get(client, 0)


def integrate_stuck(
    apply: Callable[[bytes], None],
    state: Callable[[], bytes],
    waiting: list[bytes],
    applied: list[bytes] | tuple[bytes, ...] = (),
) -> list[bytes]:
    """The updates still held back among `waiting` (held back before) and `applied` (just
    applied), after applying again those that wait on another client's item, as long as
    that makes the document grow.

    pycrdt can hold an update back for good: one whose left neighbour came in
    an update of another client that arrived after a held-back later update
    of that client (seen in tests/sim: a note member lacked one edit after
    every update had reached it). Applying it again integrates it; one still
    missing its dependency is held back again, at the cost of one apply.
    """
    have = state()
    waiting = waiting + [u for u in applied if inserts_held_back(u, have)]
    while waiting:
        stuck = [u for u in waiting if waits_on_another_client(u, have)]
        for update in stuck:
            apply(update)
        now = state()
        waiting = [u for u in waiting if inserts_held_back(u, now)]
        if not stuck or now == have:
            break
        have = now
    return waiting


def held_back(update: bytes, state_vector: bytes) -> bool:
    """Whether a document whose state vector is `state_vector` lacks part of `update`.

    True when the update has structs past the vector (pycrdt holds them back
    until their dependencies arrive) or deletes an item past it (pycrdt holds
    the deletion back); False once everything in it is integrated. An update
    pycrdt cannot decode counts as held back, so that nothing is dropped on
    its account. Reading the delete set costs (in Python) about three times
    applying the update, for updates that carry a note's whole delete set.
    """
    rest = _rest(update, state_vector)
    if rest is None or not rest or rest[0] != 0:
        return True
    return _deletes_past(rest[1:], state_vector)


def held_back_among(updates: list[bytes], state_vector: bytes) -> list[int]:
    """The indexes of the `updates` :func:`held_back` is true of, cheaply when none is.

    Each is checked for structs; the deletions of the others are checked once,
    merged (one delete set instead of one per update), and one by one only
    when the merged set names an item past the vector.
    """
    held = [i for i, u in enumerate(updates) if inserts_held_back(u, state_vector)]
    others = sorted(set(range(len(updates))) - set(held))
    if not others:
        return held
    try:
        merged = merge_many([updates[i] for i in others])
    except BaseException as exc:
        reraise_unless_decoding(exc)
        merged = None
    if merged is not None and not held_back(merged, state_vector):
        return held
    return sorted(held + [i for i in others if held_back(updates[i], state_vector)])
