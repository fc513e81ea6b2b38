"""Utf8Offsets: a chunked mirror of a text that turns character offsets into UTF-8 byte offsets."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdt.offsets import CHUNK, Utf8Offsets

#: 1-, 2-, 3- and 4-byte characters: ASCII, accents, a combining mark, CJK, astral emoji (with
#: a skin-tone modifier and a zero-width joiner), a flag made of two regional indicators
ALPHABET = "ab \n" + "éüñ" + "e\u0301" + "中文字" + "😀👍🏽\u200d🇫🇷" + "\U00010348"

pieces = st.text(alphabet=ALPHABET, max_size=12)


@st.composite
def texts(draw: st.DrawFn, long: bool = True) -> str:
    """Short texts, and (by repetition, cheaply) texts over several chunks."""
    piece = draw(pieces)
    times = draw(st.integers(0, 3 * CHUNK // max(1, len(piece)) if long else 3))
    return piece * times + draw(pieces)


edits = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 10**6), texts()),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(0, 2 * CHUNK)),
    ),
    max_size=12,
)


def byte_offsets(text: str) -> list[int]:
    """Expected answers: the UTF-8 byte offset of every character index 0..len."""
    return [0, *itertools.accumulate(len(c.encode("utf-8")) for c in text)]


def check(mirror: Utf8Offsets, model: str, probes: list[int]) -> None:
    assert mirror.text == model
    assert len(mirror) == len(model)
    expected = byte_offsets(model)
    # every chunk boundary and its neighbours, both ends, and the drawn positions
    edges = list(itertools.accumulate(mirror._chars))
    indexes = {0, len(model), *probes}
    for edge in edges:
        indexes.update((edge - 1, edge, edge + 1))
    for i in sorted(x for x in indexes if 0 <= x <= len(model)):
        assert mirror.to_bytes(i) == expected[i] == len(model[:i].encode("utf-8"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=texts(), edits=edits, probes=st.lists(st.integers(0, 4 * CHUNK), max_size=8))
def test_the_mirror_matches_a_str_model_under_random_edits(
    start: str, edits: list[tuple[str, int, object]], probes: list[int]
) -> None:
    mirror, model = Utf8Offsets(start), start
    check(mirror, model, probes)
    for kind, where, what in edits:
        index = where % (len(model) + 1)
        if kind == "insert":
            assert isinstance(what, str)
            mirror.insert(index, what)
            model = model[:index] + what + model[index:]
        else:
            assert isinstance(what, int)
            length = min(what, len(model) - index)
            assert mirror.delete(index, length) == model[index : index + length]
            model = model[:index] + model[index + length :]
        check(mirror, model, probes)


def test_to_bytes_at_every_index_of_a_text_over_several_chunks() -> None:
    # astral characters straddle every chunk boundary at a different phase
    text = "".join(f"{i}é中😀e\u0301" for i in range(700))
    assert len(text) > 3 * CHUNK
    mirror = Utf8Offsets(text)
    expected = byte_offsets(text)
    assert [mirror.to_bytes(i) for i in range(len(text) + 1)] == expected
    assert mirror.to_bytes(len(text)) == len(text.encode("utf-8"))


def test_delete_returns_the_text_removed_across_chunk_boundaries() -> None:
    text = ("añ中😀" * CHUNK)[: 3 * CHUNK + 7]
    mirror = Utf8Offsets(text)
    start, length = CHUNK - 3, CHUNK + 10  # spans the end of one chunk, all of the next
    assert mirror.delete(start, length) == text[start : start + length]
    rest = text[:start] + text[start + length :]
    check(mirror, rest, [start - 1, start, start + 1])
    assert mirror.delete(0, len(rest)) == rest
    assert mirror.text == "" and len(mirror) == 0 and mirror.to_bytes(0) == 0


def test_inserting_at_a_chunk_boundary_lands_between_the_right_characters() -> None:
    text = "é" * (2 * CHUNK)
    mirror = Utf8Offsets(text)
    mirror.insert(CHUNK, "😀")
    model = text[:CHUNK] + "😀" + text[CHUNK:]
    check(mirror, model, [CHUNK, CHUNK + 1])


@pytest.mark.parametrize("text", ["", "plain ascii", "é中😀" * 500])
def test_offsets_outside_the_text_raise_index_error_and_change_nothing(text: str) -> None:
    mirror = Utf8Offsets(text)
    n = len(text)
    for index in (-1, n + 1, n + CHUNK):
        with pytest.raises(IndexError):
            mirror.to_bytes(index)
    for index in (-1, n + 1):
        with pytest.raises(IndexError):
            mirror.insert(index, "x")
    for index, length in ((-1, 1), (0, n + 1), (n, 1), (max(0, n - 1), 2), (0, -1)):
        with pytest.raises(IndexError):
            mirror.delete(index, length)
    check(mirror, text, [])


def test_an_ascii_text_converts_without_looking_at_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = Utf8Offsets("x" * (3 * CHUNK))
    mirror.insert(CHUNK, "hello")
    located: list[int] = []
    original = Utf8Offsets._locate

    def counting(self: Utf8Offsets, index: int) -> tuple[int, int, int]:
        located.append(index)
        return original(self, index)

    monkeypatch.setattr(Utf8Offsets, "_locate", counting)
    assert [mirror.to_bytes(i) for i in (0, 1, CHUNK + 2, 3 * CHUNK + 5)] == [
        0,
        1,
        CHUNK + 2,
        3 * CHUNK + 5,
    ]
    assert located == []  # the fast path

    mirror.insert(1, "ü")  # one two-byte character: offsets after it shift by one
    assert mirror.to_bytes(1) == 1 and mirror.to_bytes(2) == 3
    assert mirror.to_bytes(CHUNK + 2) == CHUNK + 3
    located.clear()
    assert mirror.delete(1, 1) == "ü"  # ASCII again: back to the fast path
    mirror.to_bytes(CHUNK)
    assert mirror.to_bytes(2 * CHUNK) == 2 * CHUNK
    assert located == [1]  # only the delete looked its position up


def test_typing_into_a_full_chunk_does_not_fragment_the_mirror() -> None:
    # each keystroke into a full chunk once split off a one-character chunk, and every
    # conversion walks the chunk list: typing got slower with every character typed
    mirror = Utf8Offsets("é" * (4 * CHUNK))
    model = "é" * (4 * CHUNK)
    for i in range(3 * CHUNK):
        mirror.insert(CHUNK // 2 + i, "k")
    model = model[: CHUNK // 2] + "k" * (3 * CHUNK) + model[CHUNK // 2 :]
    check(mirror, model, [CHUNK // 2, 2 * CHUNK])
    assert len(mirror._chunks) <= 2 * len(model) // CHUNK + 1
