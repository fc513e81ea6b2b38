"""The line under a conversation: who is typing there (chat/typing.py's notices), else who has
read it to the end (chat/readstate.py)."""

from __future__ import annotations

import time
from typing import Any

from textual.widgets import Static

from tui.session import Session
from tui.widgets.message_line import escape

#: how long "... is typing" shows after the last notice heard (seconds)
TYPING_SHOWN = 6.0


class TypingLine(Static):
    """Who types in the open conversation; the screen's tick expires old notices."""

    def __init__(self, session: Session, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.session = session
        self.conv_id: str | None = None
        #: conversation -> peer -> when its last typing notice came
        self.typing: dict[str, dict[str, float]] = {}
        #: who has read the open conversation to its last message (names)
        self.read: list[str] = []

    def heard(self, data: dict[str, Any]) -> None:
        """A typing notice (from the chat listener), for any conversation."""
        self.typing.setdefault(data["conv_id"], {})[data["peer_id"]] = time.monotonic()
        self.show()

    def done(self, conv_id: str, peer_id: str) -> None:
        """Their message came: they are done typing."""
        self.typing.get(conv_id, {}).pop(peer_id, None)
        self.show()

    def show(self, conv_id: str | None = None) -> None:
        if conv_id is not None:
            self.conv_id = conv_id
        now = time.monotonic()
        heard = self.typing.get(self.conv_id or "", {})
        for peer in [p for p, at in heard.items() if now - at >= TYPING_SHOWN]:
            del heard[peer]
        names = [self.session.display_name(p) for p in sorted(heard)]
        line = ""
        if names:
            verb = "is" if len(names) == 1 else "are"
            line = f"[dim]{escape(', '.join(names))} {verb} typing…[/]"
        elif self.read:
            line = f"[dim]✓ read by {escape(', '.join(self.read))}[/]"
        if line != self.content:  # the same line again would lay the whole screen out again
            self.update(line)
