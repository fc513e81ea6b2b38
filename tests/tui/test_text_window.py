"""The window of a note the editor holds (tui.widgets.text_window): pure text geometry."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tui.widgets.text_window import Window, around


def lines(count: int, width: int = 20) -> str:
    return "\n".join(f"{i:05d} " + "x" * (width - 6) for i in range(count))


def test_a_short_text_is_held_whole() -> None:
    text = lines(10)
    assert around(text, 5, lines=100, chars=10_000) == Window(0, len(text))


def test_a_long_text_is_held_as_whole_lines_about_the_index() -> None:
    text = lines(10_000)
    index = text.index("05000 ")
    window = around(text, index, lines=100, chars=10_000)
    held = text[window.start : window.end]
    assert text[window.start - 1] == "\n" and text[window.end] == "\n"
    assert held.count("\n") == 99  # 100 lines
    assert held.startswith("04950 ") and "05000 " in held and held.endswith("05049 " + "x" * 14)


def test_the_window_stops_at_the_texts_ends() -> None:
    text = lines(10_000)
    first = around(text, 3, lines=100, chars=10_000)
    assert first.start == 0 and text[first.end] == "\n"
    last = around(text, len(text), lines=100, chars=10_000)
    assert last.end == len(text) and text[last.start - 1] == "\n"


def test_one_line_longer_than_the_window_is_cut() -> None:
    text = "y" * 100_000
    window = around(text, 50_000, lines=100, chars=1_000)
    assert window.start <= 50_000 <= window.end
    assert window.end - window.start <= 1_000


@given(
    st.text(alphabet="ab\né", max_size=400),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=1, max_value=120),
)
def test_the_window_holds_the_index_and_respects_its_bounds(
    text: str, index: int, max_lines: int, chars: int
) -> None:
    index = min(index, len(text))
    window = around(text, index, lines=max_lines, chars=chars)
    assert 0 <= window.start <= index <= window.end <= len(text)
    assert window.end - window.start <= max(chars, 0) or len(text) <= chars
    assert text.count("\n", window.start, window.end) < max_lines or len(text) <= chars


def test_an_edit_moves_the_window_or_not_by_where_it_falls() -> None:
    window = Window(100, 200)
    assert window.after_edit(150, 160, 170) == Window(100, 210)  # inside: it grows
    assert window.after_edit(100, 100, 105) == Window(100, 205)  # at its start: inside
    assert window.after_edit(10, 20, 15) == Window(95, 195)  # before: it shifts
    assert window.after_edit(200, 250, 200) == Window(100, 200)  # after: it stays
    assert window.after_edit(90, 110, 90) is None  # across its start
    assert window.after_edit(190, 210, 190) is None  # across its end
