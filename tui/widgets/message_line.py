"""Messages on screen: the list that scrolls them, and each one's text and marks, drawn line
by line by the block holding it.

A reply shows the line it answers above it; a deleted message reads "message
deleted", an edited one ends in "(edited)"; reactions follow with their counts
(yours in bold); ``@name`` mentions stand out, and a message that mentions
you is marked as a whole (a bar on its left).

A conversation's messages are not a widget each: a :class:`MessageBlock` (a
page of scroll-back, or the messages between two pictures) draws its
:class:`MessageLine` entries with Textual's line API, wrapped once per width,
so that opening a conversation or a page of it costs one widget's layout. The
:class:`MessageList` scrolls the blocks (and the pictures between them: tui.widgets.picture)
and turns keys into messages for the chat view (tui.widgets.chat_view).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content, Span
from textual.css.styles import RulesMap
from textual.message import Message
from textual.selection import Selection
from textual.strip import Strip
from textual.visual import Visual
from textual.widget import Widget

from tui.session import Session
from tui.widgets.format import STATUS_MARKS, attachment_text, clock_time
from tui.widgets.format import escape as escape  # where the other widgets import it
from tui.widgets.picture import can_draw

#: what a mention looks like in a text (as chat.unread reads it)
MENTION = re.compile(r"(?<![\w@])@[\w][\w.\-]*")
#: the marks a message's drawing follows (`classes` of a MessageLine)
MARKS = ("mine", "pending", "mention", "selected")


class _Parts:
    """A message's text and its styled spans, put together in order: the Content that
    markup would give, without writing markup and parsing it (most of what a page of
    messages cost to build)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.spans: list[Span] = []
        self.at = 0

    def add(self, text: str, style: str = "") -> None:
        if style and text:
            self.spans.append(Span(self.at, self.at + len(text), style))
        self.text.append(text)
        self.at += len(text)

    def mentioning(self, text: str) -> None:
        """`text` with each @mention in bold accent."""
        last = 0
        for m in MENTION.finditer(text):
            self.add(text[last : m.start()])
            self.add(m.group(), "b $accent")
            last = m.end()
        self.add(text[last:])

    def content(self) -> Content:
        return Content("".join(self.text), self.spans)


class MessageLine:
    """One message as shown: its markup and its marks (mine, pending, mention, selected);
    `update_message` redraws it when it changes (receipt, edit, reaction)."""

    def __init__(
        self,
        session: Session,
        message: dict[str, Any],
        name_of: Callable[[str], str] | None = None,
    ) -> None:
        """`name_of`: the peers' display names, if the caller keeps them for a page."""
        self.session = session
        #: the block drawing it (set when it is put in one)
        self.block: MessageBlock | None = None
        self.classes: set[str] = set()
        self.message = message
        #: the text as shown, styled (what the block measures and draws)
        self.content = Content("")
        self._set(message, name_of or session.display_name)

    def _set(self, message: dict[str, Any], name_of: Callable[[str], str]) -> None:
        self.message = message
        self.content, marks = self._shown(message, name_of)
        self.classes = {m for m, on in marks if on} | (self.classes & {"selected"})

    def update_message(self, message: dict[str, Any]) -> None:
        self._set(message, self.session.display_name)
        if self.block is not None:
            self.block.changed()

    def set_class(self, on: bool, mark: str) -> None:
        if (mark in self.classes) != on:
            self.classes ^= {mark}
            if self.block is not None:
                self.block.changed(layout=False)

    def render(self) -> Content:
        """The message's text as drawn (``str()`` of it: the plain text)."""
        return self.content

    def _shown(
        self, message: dict[str, Any], name_of: Callable[[str], str]
    ) -> tuple[Content, list[tuple[str, bool]]]:
        """The text of a message as shown, and whether each of its marks applies."""
        author = name_of(message["author"])
        mine = message["author"] == self.session.me
        mark = STATUS_MARKS.get(message["status"], "") if mine else ""
        marks = [
            ("mine", mine),
            ("pending", message["status"] == "pending"),
            ("mention", bool(message.get("mention"))),
        ]
        shown = _Parts()
        if message.get("reply_to"):
            self._quote(shown, message.get("quote"), name_of)
            shown.add("\n")
        shown.add(clock_time(message["ts"]), "dim")
        shown.add(" ")
        shown.add(author, "b")
        shown.add("  ")
        if message.get("deleted"):
            shown.add("message deleted", "i dim")
        else:
            file = self.session.attachment(message["id"])
            if file is None:
                shown.mentioning(message["text"])
            else:
                shown.add(attachment_text(file, can_draw()))
            if message.get("edited"):
                shown.add(" ")
                shown.add("(edited)", "dim")
        if mark:
            shown.add("  ")
            shown.add(mark, "dim")
        reactions = message.get("reactions") or {}
        mine_ones = set(message.get("mine") or [])
        for emoji, count in reactions.items():
            shown.add("  ")
            shown.add(f"{emoji} {count}", "b" if emoji in mine_ones else "")
        return shown.content(), marks

    def _quote(
        self, shown: _Parts, quote: dict[str, Any] | None, name_of: Callable[[str], str]
    ) -> None:
        if quote is None:
            shown.add("↳ (the message answered is not here)", "dim")
            return
        said = "message deleted" if quote["deleted"] else quote["text"][:80]
        shown.add(f"↳ {name_of(quote['author'])}: {said}", "dim")
        if quote["deleted"]:
            shown.spans.append(Span(shown.at - len(said), shown.at, "i"))


def _rows(content: Content, rules: RulesMap, width: int) -> int:
    """The rows `content` wraps to in `width` cells (a line that fits is not wrapped to
    find out: most messages of a page are one such line)."""
    plain = content.plain
    fits = content.cell_length <= width - rules.get("line_pad", 0) * 2
    if fits and "\n" not in plain and "\t" not in plain:
        return 1
    return max(1, content.get_height(rules, width))


class MessageBlock(Widget):
    """Messages in a row, drawn with the line API: each message's height is measured at the
    width (its text wrapped, no styles); a message is drawn only when one of its rows is
    shown, and kept until it or the width changes (styles: the ``message--*`` classes)."""

    COMPONENT_CLASSES = {
        "message--pending",
        "message--mention",
        "message--selected",
        "message--picked",
    }
    DEFAULT_CSS = """
    MessageBlock { height: auto; }
    MessageBlock > .message--pending { color: $text-muted; }
    MessageBlock > .message--mention { color: $warning; }
    MessageBlock > .message--selected { background: $boost; }
    MessageBlock > .message--picked { background: $accent 30%; }
    """

    def __init__(self, lines: list[MessageLine]) -> None:
        super().__init__(classes="message-block")
        # a message's text has no links (it is not markup): no link style to look up and
        # apply for each message drawn (a third of the cost of drawing one)
        self.auto_links = False
        self.lines: list[MessageLine] = []
        self._width = -1
        #: the first row of each line at `_width`, and one past the last
        self._starts: list[int] = [0]
        #: line index -> its rows, drawn
        self._drawn: dict[int, list[Strip]] = {}
        self.extend(lines)

    def extend(self, lines: list[MessageLine]) -> None:
        """Take `lines` (after those it has) to draw."""
        for line in lines:
            line.block = self
        self.lines += lines
        self.changed()

    def split_after(self, line: MessageLine) -> MessageBlock | None:
        """Keep the lines up to `line`; the rest, if any, in a new block (not mounted)."""
        at = self.lines.index(line) + 1
        rest = self.lines[at:]
        if not rest:
            return None
        self.lines = self.lines[:at]
        self.changed()
        return MessageBlock(rest)

    def changed(self, layout: bool = True) -> None:
        """Draw again (`layout`: the height may change)."""
        self._drawn = {}
        if layout:
            self._width = -1
            self._content_height_cache = (None, 0)
        self.refresh(layout=layout)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn = {}  # the theme or the focus moved: colours change

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return self.height_at(width)

    def height_at(self, width: int) -> int:
        """The rows the block takes at `width` (measured once per width)."""
        return self._measure(width)[-1]

    def _measure(self, width: int) -> list[int]:
        if self._width != width:
            starts, row, rules = [0], 0, self.styles.get_rules()
            for line in self.lines:
                inner = width - 1 if "mention" in line.classes and width > 1 else width
                row += _rows(line.content, rules, inner) if inner > 0 else 0
                starts.append(row)
            self._starts, self._width, self._drawn = starts, width, {}
        return self._starts

    def row_span(self, msg_id: str) -> tuple[int, int]:
        """The rows (first, count) a message takes in the block at its width."""
        starts = self._measure(self.size.width)
        at = next(i for i, line in enumerate(self.lines) if line.message["id"] == msg_id)
        return starts[at], starts[at + 1] - starts[at]

    def render_line(self, y: int) -> Strip:
        strip = self._row(y)
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            strip = self._selected(strip, *span)
        return strip.apply_offsets(0, y)  # (as Log does: the mouse selects rows as shown)

    def _row(self, y: int) -> Strip:
        width = self.size.width
        starts = self._measure(width)
        at = bisect.bisect_right(starts, y) - 1
        if not 0 <= at < len(self.lines):
            return Strip.blank(width, self.visual_style.rich_style)
        drawn = self._drawn.get(at)
        if drawn is None:
            drawn = self._drawn[at] = self._draw(self.lines[at], width, starts[at + 1] - starts[at])
        return drawn[y - starts[at]]

    def _selected(self, strip: Strip, start: int, end: int) -> Strip:
        """A row with the text from `start` to `end` (-1: its end) shown selected."""
        style = self.screen.get_component_rich_style("screen--selection")
        cells = strip.cell_length
        first = min(cells, strip.index_to_cell_position(start))
        last = cells if end == -1 else min(cells, strip.index_to_cell_position(end))
        if last <= first:
            return strip
        return Strip.join(
            [strip.crop(0, first), strip.crop(first, last).apply_style(style), strip.crop(last)]
        )

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The text selected with the mouse: the rows as shown, each without its padding."""
        rows = self._measure(self.size.width)[-1]
        text = "\n".join(self._row(y).text.rstrip() for y in range(rows))
        return selection.extract(text), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def _draw(self, line: MessageLine, width: int, rows: int) -> list[Strip]:
        parts = []
        if "pending" in line.classes:
            parts.append("message--pending")
        if "selected" in line.classes:
            picked = isinstance(self.parent, Widget) and self.parent.has_focus
            parts.append("message--picked" if picked else "message--selected")
        style = self.get_visual_style(*parts)
        mention = "mention" in line.classes and width > 1
        inner = width - 1 if mention else width
        drawn = Visual.to_strips(
            self, line.content, inner, None, style, apply_selection=False, pad=True
        )
        blank = Strip.blank(inner, style.rich_style)
        drawn = (drawn + [blank] * rows)[:rows]  # as measured, whatever the styles wrap to
        if not mention:
            return drawn
        bar = Strip([Segment("▌", self.get_visual_style("message--mention").rich_style)], 1)
        return [Strip.join([bar, strip]) for strip in drawn]


class MessageList(VerticalScroll, can_focus=True):
    """The messages; with focus, keys act on the one picked (see the module)."""

    BINDINGS = [
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("down", "move(1)", "Next", show=False),
        Binding("r", "act('reply')", "Reply"),
        Binding("e", "act('edit')", "Edit"),
        Binding("x", "act('delete')", "Delete"),
        Binding("plus", "act('react')", "React"),
        Binding("g", "act('goto')", "Go to answered"),
        Binding("o", "act('open')", "Open file"),
    ]

    @dataclass
    class Act(Message):
        action: str

    @dataclass
    class Move(Message):
        step: int

    def action_move(self, step: int) -> None:
        self.post_message(self.Move(step))

    def action_act(self, action: str) -> None:
        self.post_message(self.Act(action))

    def on_focus(self) -> None:
        self._restyle()
        self.post_message(self.Move(0))

    def on_blur(self) -> None:
        self._restyle()

    def _restyle(self) -> None:
        """The picked message's colour follows the focus."""
        for block in self.query_children(MessageBlock):
            if any("selected" in line.classes for line in block.lines):
                block.changed(layout=False)
