"""One message on screen: time, author, text, and what happened to it since.

A reply shows the line it answers above it; a deleted message reads "message
deleted", an edited one ends in "(edited)"; reactions follow with their counts
(yours in bold); ``@name`` mentions stand out, and a message that mentions
you is marked as a whole.
"""

from __future__ import annotations

import re
from typing import Any

from textual.widgets import Static

from tui.session import Session
from tui.widgets.format import STATUS_MARKS, attachment_text, clock_time
from tui.widgets.format import escape as escape  # where the other widgets import it
from tui.widgets.picture import can_draw

#: what a mention looks like in a text (as chat.unread reads it)
MENTION = re.compile(r"(?<![\w@])@[\w][\w.\-]*")


def highlighted(text: str) -> str:
    """`text` escaped for markup, with each @mention in bold accent."""
    out, last = [], 0
    for m in MENTION.finditer(text):
        out += [escape(text[last : m.start()]), f"[b $accent]{escape(m.group())}[/]"]
        last = m.end()
    return "".join([*out, escape(text[last:])])


class MessageLine(Static):
    """One message; `update_message` redraws it when it changes (receipt, edit, reaction)."""

    def __init__(self, session: Session, message: dict[str, Any]) -> None:
        self.session = session
        self.message = message
        text, marks = self._shown(message)
        # classes and content given here cost less than set after (a page makes 50 of these)
        super().__init__(text, classes=" ".join(["message", *(m for m, on in marks if on)]))

    def update_message(self, message: dict[str, Any]) -> None:
        self.message = message
        text, marks = self._shown(message)
        for mark, on in marks:
            self.set_class(on, mark)
        self.update(text)

    def _shown(self, message: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
        """The markup of a message, and whether each of its classes applies."""
        author = self.session.display_name(message["author"])
        mine = message["author"] == self.session.me
        mark = STATUS_MARKS.get(message["status"], "") if mine else ""
        marks = [
            ("mine", mine),
            ("pending", message["status"] == "pending"),
            ("mention", bool(message.get("mention"))),
        ]
        when = clock_time(message["ts"])
        if message.get("deleted"):
            body = "[i dim]message deleted[/]"
        else:
            file = self.session.attachment(message["id"])
            body = (
                highlighted(message["text"])
                if file is None
                else escape(attachment_text(file, can_draw()))
            )
            if message.get("edited"):
                body += " [dim](edited)[/]"
        text = f"[dim]{when}[/] [b]{escape(author)}[/]  {body}"
        if mark:
            text += f"  [dim]{mark}[/]"
        reactions = message.get("reactions") or {}
        if reactions:
            mine_ones = set(message.get("mine") or [])
            text += "  " + "  ".join(
                (f"[b]{e} {n}[/]" if e in mine_ones else f"{e} {n}") for e, n in reactions.items()
            )
        if message.get("reply_to"):
            text = f"{self._quote(message.get('quote'))}\n{text}"
        return text, marks

    def _quote(self, quote: dict[str, Any] | None) -> str:
        if quote is None:
            return "[dim]↳ (the message answered is not here)[/]"
        who = escape(self.session.display_name(quote["author"]))
        said = "[i]message deleted[/]" if quote["deleted"] else escape(quote["text"][:80])
        return f"[dim]↳ {who}: {said}[/]"
