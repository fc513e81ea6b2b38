"""The part of a note the editor holds: a window of whole lines about the cursor.

Textual's TextArea wraps, measures and re-measures its whole document: a
1 MB note costs seconds to open and about a second per keystroke. So the
note view gives it only a window of the note, a few hundred lines about the
cursor, and moves the window as the cursor nears its edges. A note smaller
than the window is held whole, as before.

A window is a span [start, end) of character offsets into the note's text.
Its start is 0 or just after a newline; its end is the text's length or a
newline's offset, unless a single line is longer than the window allows.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the most characters the editor holds (a note at most this long is held whole)
WINDOW_CHARS = 32_768
#: the most lines the editor holds
WINDOW_LINES = 600
#: the window moves when the cursor comes this many lines from an edge that is not the note's
MARGIN_LINES = 60


@dataclass(frozen=True)
class Window:
    """Characters [start, end) of a text, the part the editor holds."""

    start: int
    end: int

    def shifted(self, delta: int) -> Window:
        return Window(self.start + delta, self.end + delta)

    def after_edit(self, start: int, old_end: int, new_end: int) -> Window | None:
        """This window once characters [start, old_end) became [start, new_end) of a new
        text, if the edit lies wholly inside, before or after it; None when it straddles an
        edge (move the window instead)."""
        delta = new_end - old_end
        if self.start <= start and old_end <= self.end:
            return Window(self.start, self.end + delta)
        if old_end <= self.start:
            return self.shifted(delta)
        if start >= self.end:
            return self
        return None


def around(text: str, index: int, lines: int = WINDOW_LINES, chars: int = WINDOW_CHARS) -> Window:
    """The window of about `lines` whole lines (at most about `chars` characters) with
    character `index` near its middle; the whole text when it is short enough."""
    if len(text) <= chars:
        return Window(0, len(text))
    index = max(0, min(index, len(text)))
    floor = max(0, index - chars // 2)
    start = text.rfind("\n", 0, index) + 1  # where the cursor's line starts
    if start < floor:
        start = floor  # a line longer than half the window: cut it
    for _ in range(lines // 2):
        if start == 0:
            break
        previous = text.rfind("\n", 0, start - 1) + 1
        if previous < floor:
            break
        start = previous
    ceiling = min(len(text), start + chars)
    end = index
    for _ in range(max(1, lines - text.count("\n", start, index))):
        newline = text.find("\n", end, ceiling)
        if newline < 0:
            end = ceiling
            if ceiling < len(text):  # end on a line's end if there is one past the cursor
                last = text.rfind("\n", index, ceiling)
                end = last if last >= 0 else ceiling
            break
        end = newline + 1
    else:
        end -= 1  # the newline after the last line stays outside
    return Window(start, end)


def margin(window_lines: int) -> int:
    """How near (in lines) the cursor may come to an inner edge before the window moves."""
    return min(MARGIN_LINES, window_lines // 4)
