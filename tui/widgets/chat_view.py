"""The chat view: a conversation's messages, their delivery state, and an input with history.

The message list takes focus (shift+tab from the input, or ctrl+up): ↑ ↓ pick a
message; r replies to it, e edits it (yours), x deletes it for everyone
(yours), + reacts (again: takes the reaction back), g goes to the message it
answers, o opens the file it carries (to fetch it, save it, see it). Escape in
the input drops a reply or an edit in progress.

A conversation opens on its last page of messages; scrolling to the top (or ↑
on the first message) shows the page before, fetched by position (keyset), so
that a page costs the same deep in a long history as near its end. Each page
is one widget drawing its messages line by line (tui.widgets.message_line), so
a page costs what its text does, however many are shown already.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from mesh.errors import MeshError
from mesh.wire.identity import encode_peer_id
from tui.dialogs import Prompt
from tui.file_screens import open_attachment
from tui.session import Session
from tui.widgets.format import seen_text
from tui.widgets.message_line import MessageBlock, MessageLine, MessageList, escape
from tui.widgets.picture import PREVIEW_MAX, can_draw, picture
from tui.widgets.typing_line import TypingLine

#: messages shown when a conversation opens, and added by each page of scroll-back
PAGE = 50
#: at most one typing notice per conversation this often (the node throttles too)
TYPING_EVERY = 2.0


class HistoryInput(Input):
    """An input that recalls what was sent with up and down."""

    BINDINGS = [
        Binding("up", "previous", "previous", show=False),
        Binding("down", "next", "next", show=False),
        Binding("ctrl+up", "messages", "Pick a message", show=False),
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    class Cancel(Message):
        """Escape: drop the reply or edit in progress, else leave the conversation."""

    class Pick(Message):
        """ctrl+up: go to the messages."""

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

    def action_cancel(self) -> None:
        self.post_message(self.Cancel())

    def action_messages(self) -> None:
        self.post_message(self.Pick())


class ChatView(Vertical):
    """Shows one conversation; new messages, receipts and changes arrive live."""

    def __init__(self, session: Session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.conv_id: str | None = None
        self.kind = "room"
        #: the messages shown, oldest first
        self.lines: dict[str, MessageLine] = {}
        #: message id -> the picture drawn under it
        self.pictures: dict[str, Widget] = {}
        #: whether there may be messages before the first one shown
        self.older = False
        self.selected: str | None = None
        #: what Enter does: ("say", None), ("reply", msg_id) or ("edit", msg_id)
        self.mode: tuple[str, str | None] = ("say", None)
        self._typing_sent = -TYPING_EVERY

    def compose(self) -> ComposeResult:
        yield Static("", id="chat-title")
        yield MessageList(id="messages")
        yield TypingLine(self.session, id="chat-typing")
        yield Static("", id="chat-mode")
        # the text of a message being edited stays, unselected, as the cursor comes to it
        yield HistoryInput(
            placeholder="Write a message, Enter to send", id="chat-input", select_on_focus=False
        )

    def show(self, kind: str, conv_id: str, focus: str | None = None) -> None:
        """Open a room or direct conversation (with `focus`, at that message, picked)."""
        self.kind, self.conv_id = kind, conv_id
        self._set_mode("say", None)
        self.query_one("#chat-title", Static).update(self._title())
        self._load(focus)
        if focus is None:
            self.query_one("#chat-input", HistoryInput).focus()
        else:
            self.query_one(MessageList).focus()
            self.pick(focus)

    def _load(self, around: str | None = None) -> None:
        assert self.conv_id is not None
        scroll = self.query_one(MessageList)
        scroll.remove_children()
        self.lines = {}
        self.pictures = {}
        self.selected = None
        try:
            messages = self.session.history(self.conv_id, PAGE, around)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.older = around is not None or len(messages) == PAGE
        self.lines = self._made(messages)
        scroll.mount(MessageBlock(list(self.lines.values())))
        scroll.scroll_end(animate=False)
        self.query_one(TypingLine).show(self.conv_id)
        self.show_read()

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
                f"[b]@ {escape(name)}[/]  [dim]{seen} · {peer}[/]{request}"
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
            f"[b]# {escape(state.name)}[/]  [dim]epoch {state.epoch} · readable by: "
            f"{escape(names)}[/]"
        )

    def _online(self, peer_id: str) -> bool:
        return peer_id != self.session.me and bool(self.session.presence(peer_id)["online"])

    def refresh_title(self) -> None:
        """Presence moves: the screen's tick redraws the title."""
        if self.conv_id is not None:
            self.query_one("#chat-title", Static).update(self._title())

    def load_older(self) -> int:
        """Show the page of messages before the first one shown; how many came."""
        if self.conv_id is None or not self.lines or not self.older:
            return 0
        first = next(iter(self.lines))
        try:
            messages = self.session.history(self.conv_id, PAGE, before=first)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return 0
        self.older = len(messages) == PAGE
        fresh = [m for m in messages if m["id"] not in self.lines]
        added = self._made(fresh)
        if not added:
            return 0
        scroll = self.query_one(MessageList)
        was_first = scroll.children[0]
        page = MessageBlock(list(added.values()))
        scroll.mount(page, before=was_first)
        self.lines = {**added, **self.lines}
        # the message that was first keeps its place on screen
        width = was_first.size.width if isinstance(was_first, MessageBlock) else 0
        if width:  # in the frame that shows the page: its rows are known before its layout
            rows = page.height_at(width)
            virtual = scroll.virtual_size
            scroll.set_reactive(
                MessageList.virtual_size, virtual.with_height(virtual.height + rows)
            )
            scroll.scroll_to(y=scroll.scroll_y + rows, animate=False, immediate=True)
        else:
            self.call_after_refresh(scroll.scroll_to_widget, was_first, top=True, animate=False)
        return len(added)

    def _made(self, messages: list[dict[str, Any]]) -> dict[str, MessageLine]:
        """The lines of a page: each author's name asked once (it takes a few queries)."""
        names = functools.cache(self.session.display_name)
        return {m["id"]: MessageLine(self.session, m, names) for m in messages}

    def on_mount(self) -> None:
        self.watch(self.query_one(MessageList), "scroll_y", self._scrolled, init=False)

    def _scrolled(self, old: float, new: float) -> None:
        """Scrolled to the top: the page before comes in the same turn, so that no frame
        shows the top without it (a message to ask for it was handled a frame later)."""
        if new <= 0 < old:
            self.load_older()

    def _add(self, message: dict[str, Any]) -> None:
        line = MessageLine(self.session, message)
        self.lines[message["id"]] = line
        scroll = self.query_one(MessageList)
        last = scroll.children[-1] if scroll.children else None
        if isinstance(last, MessageBlock):
            last.extend([line])
        else:  # the first message, or the first after a picture
            scroll.mount(MessageBlock([line]))
        self._picture(line)

    def _picture(self, line: MessageLine) -> None:
        """Draw the picture a message announced under it, once it is here (where the
        terminal draws pictures: elsewhere the message shows a placeholder)."""
        msg_id = line.message["id"]
        if not can_draw() or msg_id in self.pictures:
            return
        data = self.session.picture(msg_id, PREVIEW_MAX)
        shown = None if data is None else picture(data)
        if shown is not None and line.block is not None:
            self.pictures[msg_id] = shown
            scroll = self.query_one(MessageList)
            rest = line.block.split_after(line)  # the picture goes right under its message
            if rest is not None:
                scroll.mount(rest, after=line.block)
            scroll.mount(shown, after=line.block)

    def message_event(self, message: dict[str, Any], new: bool = True) -> None:
        """A message was stored or changed (from the chat listener); `new`: add it if it is
        not on screen (a change to one that is not shown is not added)."""
        if message.get("conv_id") != self.conv_id:
            return
        line = self.lines.get(message["id"])
        if line is not None:
            line.update_message(message)
            return
        if new:
            self.query_one(TypingLine).done(message["conv_id"], message["author"])
            self._add(message)
            self.show_read()
            self.query_one(MessageList).scroll_end(animate=False)

    def redraw(self, msg_id: str | None) -> None:
        """Draw a message on screen again (its attachment arrived, say)."""
        line = self.lines.get(msg_id or "")
        if line is not None:
            line.update_message(line.message)
            self._picture(line)

    # -- picking a message and acting on it ------------------------------------------

    def pick(self, msg_id: str | None) -> None:
        """Mark one message as the one the keys act on, and bring it into view."""
        if self.selected in self.lines:
            self.lines[self.selected].set_class(False, "selected")
        self.selected = msg_id if msg_id in self.lines else None
        if self.selected is not None:
            self.lines[self.selected].set_class(True, "selected")
            self.call_after_refresh(self._into_view, self.selected)

    def _into_view(self, msg_id: str) -> None:
        line = self.lines.get(msg_id)
        if line is None or line.block is None or not line.block.is_mounted:
            return
        first, rows = line.block.row_span(msg_id)
        block = line.block.virtual_region
        region = Region(block.x, block.y + first, block.width, rows)
        self.query_one(MessageList).scroll_to_region(region, animate=False, immediate=True)

    def on_message_list_move(self, event: MessageList.Move) -> None:
        ids = list(self.lines)
        if not ids:
            return
        at = ids.index(self.selected) if self.selected in ids else len(ids) - 1
        if self.selected is None:
            event.step = 0
        elif at == 0 and event.step < 0 and self.load_older():
            ids = list(self.lines)
            at = ids.index(self.selected)
        self.pick(ids[max(0, min(len(ids) - 1, at + event.step))])

    def on_history_input_pick(self, event: HistoryInput.Pick) -> None:
        """From the input to the messages, the last one picked."""
        if self.lines:
            self.pick(list(self.lines)[-1])
        self.query_one(MessageList).focus()

    async def on_history_input_cancel(self, event: HistoryInput.Cancel) -> None:
        if self.mode[0] != "say":
            self._set_mode("say", None)
            self.query_one("#chat-input", HistoryInput).value = ""
        else:
            await self.run_action("screen.focus_sidebar")

    def on_message_list_act(self, event: MessageList.Act) -> None:
        if self.selected is None:
            return
        message = self.lines[self.selected].message
        box = self.query_one("#chat-input", HistoryInput)
        if event.action in ("edit", "delete") and message["author"] != self.session.me:
            self.app.notify(f"only its author can {event.action} a message", severity="warning")
            return
        if event.action in ("edit", "delete", "react") and message.get("deleted"):
            self.app.notify("that message was deleted", severity="warning")
            return
        if event.action == "reply":
            self._set_mode("reply", message["id"])
            box.focus()
        elif event.action == "edit":
            self._set_mode("edit", message["id"])
            box.value = message["text"]
            box.cursor_position = len(box.value)
            box.focus()
        elif event.action == "delete":
            self._confirm_delete(message["id"])
        elif event.action == "react":
            self._ask("React with which emoji? (again: take it back)", "👍", self._react)
        elif event.action == "goto" and message.get("reply_to"):
            self.jump_to(message["reply_to"])
        elif event.action == "open":
            file = self.session.attachment(message["id"])
            if file is None:
                self.app.notify("that message carries no file", severity="warning")
            else:
                open_attachment(self.app, self.session, file["file_id"])

    def jump_to(self, msg_id: str) -> None:
        """Pick a message of this conversation, loading the history about it if need be."""
        if msg_id not in self.lines:
            self._load(around=msg_id)
        if msg_id not in self.lines:
            self.app.notify("that message is not here", severity="warning")
            return
        self.query_one(MessageList).focus()
        self.pick(msg_id)

    def _set_mode(self, mode: str, msg_id: str | None) -> None:
        self.mode = (mode, msg_id)
        label = ""
        if mode != "say" and msg_id in self.lines:
            about = self.lines[msg_id].message
            who = escape(self.session.display_name(about["author"]))
            doing = "Replying to" if mode == "reply" else "Editing your message to"
            label = f"[b]{doing}[/] {who}: {escape(about['text'][:60])}  [dim](escape: cancel)[/]"
        self.query_one("#chat-mode", Static).update(label)
        self.query_one("#chat-mode", Static).display = bool(label)

    def _ask(self, question: str, value: str, then: Callable[[str], None]) -> None:
        def done(answer: str | None) -> None:
            if answer:
                self._try(lambda: then(answer))

        self.app.push_screen(Prompt(question, "", value), done)

    def _confirm_delete(self, msg_id: str) -> None:
        def delete(answer: str) -> None:
            if answer.lower().startswith("y"):
                self.session.delete(msg_id)

        self._ask("Delete this message for everyone? (y/n)", "", delete)

    def _react(self, emoji: str) -> None:
        if self.selected is not None:
            self.session.react(self.selected, emoji)

    def _try(self, call: Callable[[], object]) -> bool:
        try:
            call()
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return False
        return True

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
        self.query_one(TypingLine).heard(data)

    def show_typing(self) -> None:
        """The screen's tick: old notices go."""
        self.query_one(TypingLine).show()

    def show_read(self) -> None:
        """Who has read the conversation to its last message shown (as they told)."""
        line = self.query_one(TypingLine)
        last = next(reversed(self.lines), None) if self.lines else None
        if self.conv_id is None or last is None:
            line.read = []
        else:
            read = self.session.read_by(self.conv_id)
            line.read = sorted(
                self.session.display_name(peer)
                for peer, upto in read.items()
                if upto == last and peer != self.session.me
            )
        line.show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.conv_id is None:
            return
        event.stop()
        box = self.query_one("#chat-input", HistoryInput)
        mode, msg_id = self.mode
        if mode == "reply" and msg_id is not None:
            sent = self._try(lambda: self.session.reply(msg_id, text))
        elif mode == "edit" and msg_id is not None:
            sent = self._try(lambda: self.session.edit(msg_id, text))
        elif self.kind == "dm":
            conv = self.session.conversation(self.conv_id)
            assert conv is not None, "a direct conversation on screen is stored"
            sent = self._try(lambda: self.session.send_direct(conv["peer_id"], text))
        else:
            conv_id = self.conv_id
            sent = self._try(lambda: self.session.say(conv_id, text))
        if not sent:
            return
        self._set_mode("say", None)
        box.remember(text)
        box.value = ""
