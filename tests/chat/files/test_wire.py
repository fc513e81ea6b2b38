"""The FILE payloads: each round-trips, and decoding refuses anything out of shape."""

from __future__ import annotations

import itertools

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.files import wire
from mesh.errors import ChatError

ROOT = bytes(range(32))


@given(st.sets(st.integers(0, 500), min_size=1, max_size=wire.MAX_WANT))
def test_a_want_asks_for_exactly_its_indices_in_few_ranges(indices: set[int]) -> None:
    want = wire.Want.of(ROOT, sorted(indices))
    decoded = wire.decode(want.encode())
    assert isinstance(decoded, wire.Want)
    assert decoded.indices() == sorted(indices)
    starts = [s for s, _ in decoded.ranges]
    assert all(b - a > 1 for a, b in itertools.pairwise(starts)) or len(starts) <= 1


@pytest.mark.parametrize(
    "message",
    [
        wire.Query(ROOT),
        wire.Have(ROOT, 10, None),
        wire.Have(ROOT, 10, wire.bitfield(10, {0, 9})),
        wire.Chunk(ROOT, 3, b"s" * 40, (bytes(32), bytes(32))),
        wire.Refuse(ROOT, "busy"),
    ],
)
def test_each_message_round_trips(message: wire.Message) -> None:
    assert wire.decode(message.encode()) == message


def test_a_bitfield_names_the_chunks_held() -> None:
    have = wire.Have(ROOT, 10, wire.bitfield(10, {0, 9}))
    assert have.bitfield == b"\x80\x40" and have.held() == {0, 9}
    assert wire.Have(ROOT, 10, None).held() is None


@pytest.mark.parametrize(
    "body",
    [
        [1],
        [1, ROOT[:31]],
        [1, ROOT, "extra"],
        [9, ROOT],
        [2, ROOT, 0, None],
        [2, ROOT, 10, b"\x00"],  # 10 chunks need 2 bytes
        [3, ROOT, []],
        [3, ROOT, [[0, wire.MAX_WANT + 1]]],
        [3, ROOT, [[0, 40], [100, 40]]],  # more than MAX_WANT in all
        [4, ROOT, 0, b"short", []],  # shorter than a MAC
        [4, ROOT, 0, b"s" * 40, [b"x"]],
        [5, ROOT, "why not"],
    ],
)
def test_a_malformed_payload_is_refused(body: list[object]) -> None:
    with pytest.raises(ChatError) as error:
        wire.decode(msgpack.packb(body))
    assert error.value.reason == "malformed"


def test_bytes_that_are_not_msgpack_are_refused() -> None:
    with pytest.raises(ChatError):
        wire.decode(b"\xc1\xc1")
