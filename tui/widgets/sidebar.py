"""The sidebar: rooms, direct conversations and notes, with unread counts and online markers."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui.session import Session


class Sidebar(OptionList):
    """Lists what can be opened; selecting an entry posts :class:`Sidebar.Opened`."""

    @dataclass
    class Opened(Message):
        kind: str  # "room", "dm" or "note"
        target: str  # conversation id or note id

    def __init__(self, session: Session, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.session = session
        #: {conv_id: {"unread", "mentions"}} as of the last refresh (the node keeps them)
        self.unread: dict[str, dict[str, int]] = {}
        self.current: str | None = None
        self._shown: list[tuple[str | None, str]] = []

    def refresh_entries(self) -> None:
        """Rebuild the list from the session, keeping the highlighted entry."""
        highlighted = self.highlighted_option.id if self.highlighted_option else None
        self.unread = self.session.unread()
        status = self.session.status()
        online = {link["peer_id"] for link in status.get("links", [])}
        reachable = {route["dest"] for route in status.get("routes", [])}
        options: list[Option | None] = [Option("Rooms", disabled=True)]
        for room in self.session.rooms():
            state = "" if room["state"] == "joined" else f" ({room['state']})"
            options.append(
                Option(
                    f" # {room['name']}{state}{self._badge(room['room_id'])}",
                    id=f"room:{room['room_id']}",
                )
            )
        options.append(Option("Direct", disabled=True))
        for conv in self.session.conversations():
            if conv["kind"] != "dm":
                continue
            peer = conv["peer_id"]
            mark = "●" if peer in online else ("○" if peer in reachable else " ")
            request = " (request)" if conv["state"] == "request" else ""
            name = self.session.display_name(peer)
            options.append(
                Option(
                    f" {mark} {name}{request}{self._badge(conv['conv_id'])}",
                    id=f"dm:{conv['conv_id']}",
                )
            )
        options.append(Option("Notes", disabled=True))
        for note in self.session.notes():
            options.append(
                Option(f" ✎ {note['title'] or '(untitled)'}", id=f"note:{note['note_id']}")
            )
        shown = [(o.id, str(o.prompt)) for o in options if o is not None]
        if shown == self._shown:
            return  # unchanged: leave the list (and the user's place in it) alone
        self._shown = shown
        self.clear_options()
        self.add_options([o for o in options if o is not None])
        if highlighted is not None:
            try:
                self.highlighted = self.get_option_index(highlighted)
            except Exception:  # the entry went away
                self.highlighted = None

    def _badge(self, conv_id: str) -> str:
        """`[3]` unread messages, `[3 @1]` when one of them mentions you."""
        counts = self.unread.get(conv_id)
        if not counts or conv_id == self.current:
            return ""
        mentions = f" @{counts['mentions']}" if counts["mentions"] else ""
        return f"  [{counts['unread']}{mentions}]"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        kind, _, target = option_id.partition(":")
        if target:
            event.stop()
            self.post_message(self.Opened(kind, target))
