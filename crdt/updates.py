"""Yjs update bytes (v1): merging many, what one waits for, whether a document holds one back.

pycrdt integrates what an update carries only once its dependencies are
in the document: structs whose left neighbour or earlier clocks are missing,
and deletions of items the document does not have yet, are held back inside
the document ("pending") and left out of ``doc.get_update()``. pycrdt does
not expose that pending state, so :func:`held_back` asks the other way round:
does the update carry anything past the document's state vector?

What an update waits for, for crdt/holding.py: the first clock of each
client whose structs it carries (:func:`struct_starts`, which reads only the
headers of the update's struct groups, the one part of the encoding read by
hand here) and, for an update that only deletes, the clock ranges it deletes
(:func:`deletion_ends`, read by pycrdt).
"""

from __future__ import annotations

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


#: a clock past any a document holds: a state vector naming a client at it leaves the client out
_PAST_ALL = 1 << 53


def _varuint_at(data: bytes, at: int) -> tuple[int, int]:
    """The unsigned LEB128 number at `at` and where the next one starts; ValueError past the end."""
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varuint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _write_varuint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)


def encode_state(clocks: dict[int, int]) -> bytes:
    """A Yjs state vector from {client: clock} (the inverse of :func:`state_map`)."""
    out = bytearray()
    _write_varuint(out, len(clocks))
    for client, clock in clocks.items():
        _write_varuint(out, client)
        _write_varuint(out, clock)
    return bytes(out)


def struct_starts(update: bytes) -> list[tuple[int, int]] | None:
    """(client, first clock) of each client whose structs `update` carries; None when the
    update cannot be read.

    A v1 update begins with its structs, grouped by client: the number of
    clients, then for each the number of its structs, its id and its first
    clock. Only the first group's header is read here; the next one is found
    by asking pycrdt for the update without the clients seen so far (a state
    vector naming them at a clock past any), so an update of one client (one
    editor's transaction) costs no pycrdt call, and one of k clients k - 1.
    """
    starts: list[tuple[int, int]] = []
    rest = update
    try:
        while True:
            clients, at = _varuint_at(rest, 0)
            if clients == 0:
                return starts
            _, at = _varuint_at(rest, at)  # the client's number of structs
            client, at = _varuint_at(rest, at)
            clock, at = _varuint_at(rest, at)
            starts.append((client, clock))
            if clients == 1:
                return starts
            rest = bytes(
                pycrdt.get_update(
                    update, encode_state(dict.fromkeys((c for c, _ in starts), _PAST_ALL))
                )
            )
    except ValueError:
        return None
    except BaseException as exc:
        reraise_unless_decoding(exc)
        return None


def decodable(update: bytes) -> bool:
    """Whether pycrdt can decode `update` (it reads the whole of it)."""
    try:
        pycrdt.get_state(update)
    except BaseException as exc:
        reraise_unless_decoding(exc)
        return False
    return True


#: what :func:`deletion_ends` gives ranges (pycrdt's IdMap wants an attribute on each)
_MARK = [pycrdt.ContentAttribute("deleted", True)]


def deletion_ends(update: bytes) -> dict[int, int] | None:
    """For an update that only deletes: {client: the end of the last clock range it deletes};
    None when it carries structs or cannot be read (read by pycrdt, as an IdSet)."""
    if update[:1] != b"\x00":
        return None
    try:
        ranges = pycrdt.IdMap.from_set(pycrdt.IdSet.decode(update[1:]), _MARK)
        ends: dict[int, int] = {}
        for client, span in ranges:
            ends[client] = max(ends.get(client, 0), span.end)
        return ends
    except BaseException as exc:
        reraise_unless_decoding(exc)
        return None


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
