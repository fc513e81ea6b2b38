"""The chat view: a conversation's messages, their delivery state, and an input with history."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static

from mesh.errors import MeshError
from mesh.wire.identity import encode_peer_id
from tui.session import Session
from tui.widgets.format import STATUS_MARKS, clock_time, seen_text

SHOWN = 200
#: at most one typing notice per conversation this often (the node throttles too)
TYPING_EVERY = 2.0
#: how long "... is typing" shows after the last notice heard (seconds)
TYPING_SHOWN = 6.0


class HistoryInput(Input):
    """An input that recalls what was sent with up and down."""

    BINDINGS = [
        Binding("up", "previous", "previous", show=False),
        Binding("down", "next", "next", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[str] = []
        self._position = 0

    def remember(self, text: str) -> None:
        self.sent.append(text)
        self._position = len(self.sent)

    def action_previous(self) -> None:
        if self._position > 0:
            self._position -= 1
            self.value = self.sent[self._position]
            self.cursor_position = len(self.value)

    def action_next(self) -> None:
        if self._position < len(self.sent):
            self._position += 1
            self.value = self.sent[self._position] if self._position < len(self.sent) else ""
            self.cursor_position = len(self.value)


class MessageLine(Static):
    """One message: time, author, text and, for ours, whether it arrived."""

    def __init__(self, session: Session, message: dict[str, Any]) -> None:
        super().__init__(classes="message")
        self.session = session
        self.message = message
        self.update_message(message)

    def update_message(self, message: dict[str, Any]) -> None:
        self.message = message
        author = self.session.display_name(message["author"])
        mine = message["author"] == self.session.me
        mark = STATUS_MARKS.get(message["status"], "") if mine else ""
        self.set_class(mine, "mine")
        self.set_class(message["status"] == "pending", "pending")
        when = clock_time(message["ts"])
        text = f"[dim]{when}[/] [b]{_escape(author)}[/]  {_escape(message['text'])}"
        self.update(text + (f"  [dim]{mark}[/]" if mark else ""))


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


class ChatView(Vertical):
    """Shows one conversation; new messages and receipts arrive live."""

    def __init__(self, session: Session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.conv_id: str | None = None
        self.kind = "room"
        self.lines: dict[str, MessageLine] = {}
        #: conversation -> peer -> when its last typing notice came
        self.typing: dict[str, dict[str, float]] = {}
        self._typing_sent = -TYPING_EVERY

    def compose(self) -> ComposeResult:
        yield Static("", id="chat-title")
        yield VerticalScroll(id="messages")
        yield Static("", id="chat-typing")
        yield HistoryInput(placeholder="Write a message, Enter to send", id="chat-input")

    def show(self, kind: str, conv_id: str) -> None:
        """Open a room or direct conversation."""
        self.kind, self.conv_id = kind, conv_id
        self.query_one("#chat-title", Static).update(self._title())
        scroll = self.query_one("#messages", VerticalScroll)
        scroll.remove_children()
        self.lines = {}
        try:
            messages = self.session.history(conv_id, SHOWN)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        for message in messages:
            self._add(message)
        scroll.scroll_end(animate=False)
        self.show_typing()
        self.query_one("#chat-input", HistoryInput).focus()

    def _title(self) -> str:
        assert self.conv_id is not None
        if self.kind == "dm":
            conv = self.session.conversation(self.conv_id)
            peer = conv["peer_id"] if conv else "?"
            request = (
                "  [i](message request: add them as a contact to accept)[/]"
                if (conv and conv["state"] == "request")
                else ""
            )
            name = self.session.display_name(peer)
            seen = seen_text(self.session.presence(peer)) if conv else ""
            return (
                f"[b]@ {_escape(name)}[/]  [dim]{seen} · {peer}[/]{request}"
                "  [dim]end-to-end encrypted[/]"
            )
        state = self.session.room_state(self.conv_id)
        names = ", ".join(
            sorted(
                ("● " if self._online(encode_peer_id(m)) else "")
                + self.session.display_name(encode_peer_id(m))
                for m in state.members
            )
        )
        return (
            f"[b]# {_escape(state.name)}[/]  [dim]epoch {state.epoch} · readable by: "
            f"{_escape(names)}[/]"
        )

    def _online(self, peer_id: str) -> bool:
        return peer_id != self.session.me and bool(self.session.presence(peer_id)["online"])

    def refresh_title(self) -> None:
        """Presence moves: the screen's tick redraws the title."""
        if self.conv_id is not None:
            self.query_one("#chat-title", Static).update(self._title())

    def _add(self, message: dict[str, Any]) -> None:
        line = MessageLine(self.session, message)
        self.lines[message["id"]] = line
        self.query_one("#messages", VerticalScroll).mount(line)

    def message_event(self, message: dict[str, Any]) -> None:
        """A message was stored or changed state (from the chat listener)."""
        if message.get("conv_id") != self.conv_id:
            return
        line = self.lines.get(message["id"])
        if line is not None:
            line.update_message(message)
            return
        self.typing.get(message["conv_id"], {}).pop(message["author"], None)  # done typing
        self.show_typing()
        self._add(message)
        self.query_one("#messages", VerticalScroll).scroll_end(animate=False)

    # -- typing notices ------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "chat-input" or not event.value or self.conv_id is None:
            return
        now = time.monotonic()
        if now - self._typing_sent >= TYPING_EVERY:
            self._typing_sent = now
            with contextlib.suppress(MeshError):  # a notice not sent is no loss
                self.session.typed(self.conv_id)

    def typing_event(self, data: dict[str, Any]) -> None:
        """Someone is typing somewhere (from the chat listener)."""
        self.typing.setdefault(data["conv_id"], {})[data["peer_id"]] = time.monotonic()
        self.show_typing()

    def show_typing(self) -> None:
        """The "... is typing" line of the open conversation (the screen's tick expires it)."""
        now = time.monotonic()
        heard = self.typing.get(self.conv_id or "", {})
        for peer in [p for p, at in heard.items() if now - at >= TYPING_SHOWN]:
            del heard[peer]
        names = [self.session.display_name(p) for p in sorted(heard)]
        line = ""
        if names:
            verb = "is" if len(names) == 1 else "are"
            line = f"[dim]{_escape(', '.join(names))} {verb} typing…[/]"
        self.query_one("#chat-typing", Static).update(line)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.conv_id is None:
            return
        event.stop()
        box = self.query_one("#chat-input", HistoryInput)
        try:
            if self.kind == "dm":
                conv = self.session.conversation(self.conv_id)
                assert conv is not None, "a direct conversation on screen is stored"
                self.session.send_direct(conv["peer_id"], text)
            else:
                self.session.say(self.conv_id, text)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        box.remember(text)
        box.value = ""
