"""The main screen: sidebar, the open conversation or note, and the status bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static

from mesh.errors import MeshError
from mesh.wire.address import PeerAddress
from mesh.wire.invite import Invite
from tui.dialogs import Prompt
from tui.file_screens import FilePicker
from tui.session import Session
from tui.widgets.chat_view import ChatView
from tui.widgets.note_view import NoteView
from tui.widgets.sidebar import Sidebar
from tui.widgets.status_bar import StatusBar

WELCOME = """[b]meshnotes[/]  encrypted chat and shared notes over a mesh of peers

Pick a room, a conversation or a note on the left (arrows, Enter).

  [b]n[/] new room     [b]i[/] invite      [b]r[/] remove member   [b]j[/] accept invitation
  [b]d[/] direct message   [b]o[/] new note   [b]m[/] import note   [b]x[/] export note
  [b]c[/] connect to a peer   [b]p[/] peers and contacts   [b]?[/] help   [b]ctrl+p[/] commands
  [b]s[/] share my contact (invite code and QR)   [b]a[/] add a contact from an invite
  [b]/[/] or [b]ctrl+f[/] search every conversation
"""


class MainScreen(Screen[None]):
    CSS_PATH = "main_screen.tcss"
    BINDINGS = [
        Binding("n", "new_room", "New room"),
        Binding("i", "invite", "Invite"),
        Binding("r", "remove_member", "Remove", show=False),
        Binding("j", "join", "Accept invite", show=False),
        Binding("d", "direct", "Message peer"),
        Binding("o", "new_note", "New note"),
        Binding("m", "import_note", "Import", show=False),
        Binding("x", "export_note", "Export", show=False),
        Binding("c", "connect", "Connect", show=False),
        Binding("p", "peers", "Peers"),
        Binding("s", "share_contact", "Share contact", show=False),
        Binding("a", "add_from_invite", "Add from invite", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("slash,ctrl+f", "search", "Search"),
        Binding("escape", "focus_sidebar", "Sidebar", show=False),
        Binding("f2", "toggle_preview", "Preview", show=False),
        Binding("h", "history", "History", show=False),
        Binding("u", "send_file", "Send file", show=False),
    ]

    class NodeStopped(Message):
        """The session's node went away (the app quits, saying `error`)."""

        def __init__(self, error: str) -> None:
            super().__init__()
            self.error = error

    def __init__(self, session: Session, bell: bool = True) -> None:
        """`bell`: ring the terminal bell when a message mentions you."""
        super().__init__()
        self.session = session
        self.mention_bell = bell
        self.current: tuple[str, str] | None = None  # (kind, id)
        self._applied_before = 0
        self._catching_up = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield Sidebar(self.session, id="sidebar")
            with ContentSwitcher(initial="welcome", id="pane"):
                yield Static(WELCOME, id="welcome")
                yield ChatView(self.session, id="chat")
                yield NoteView(self.session, id="note")
        yield StatusBar(self.session, id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.session.listeners.append(self._event)
        self.query_one(Sidebar).refresh_entries()
        self.query_one(StatusBar).refresh_status()
        self.set_interval(1.0, self._tick)
        self.query_one(Sidebar).focus()

    def on_unmount(self) -> None:
        if self._event in self.session.listeners:
            self.session.listeners.remove(self._event)

    def _tick(self) -> None:
        if self.session.closed:
            return  # quitting
        applied = self.session.status().get("counters", {}).get("notes_applied", 0)
        self._catching_up = applied - self._applied_before > 20  # a burst: a catch-up runs
        self._applied_before = applied
        self.query_one(NoteView).set_loading(self._catching_up)
        chat = self.query_one(ChatView)
        chat.show_typing()
        chat.refresh_title()
        self.query_one(StatusBar).refresh_status(self._catching_up)
        self.query_one(Sidebar).refresh_entries()

    # -- live events ---------------------------------------------------------------

    def _event(self, source: str, kind: str, data: dict[str, Any]) -> None:
        """An event of the session (called where it happens: handled on the UI's next turn)."""
        handler = {
            "chat": self._on_chat_event,
            "node": self._on_node_event,
            "notes": self._on_notes_event,
            "session": self._on_session_event,
            "files": self._on_files_event,
        }.get(source)
        if handler is not None:
            self.call_later(handler, kind, data)

    def _on_chat_event(self, kind: str, data: dict[str, Any]) -> None:
        if self.session.closed:
            return  # quitting: the session reads nothing more
        sidebar = self.query_one(Sidebar)
        if kind == "typing":
            self.query_one(ChatView).typing_event(data)
            return
        if kind == "read_by":
            if self.current is not None and self.current[1] == data["conv_id"]:
                self.query_one(ChatView).show_read()
            return
        if kind in ("message", "status", "changed"):
            self.query_one(ChatView).message_event(data, new=kind != "changed")
            viewing = self.current is not None and self.current[1] == data["conv_id"]
            if kind == "message" and data["author"] != self.session.me:
                self._arrived(data, viewing)
        elif kind == "invite":
            who = self.session.display_name(data["from"])
            self.app.notify(
                f"{who} invited you to #{data['name']}"
                + ("" if self._joined(data["room_id"]) else " — select it and press j to join"),
                title="Invitation",
            )
        sidebar.refresh_entries()

    def _arrived(self, message: dict[str, Any], viewing: bool) -> None:
        """Someone else's message: read if on screen, else counted (the node counts it);
        a mention is told even on screen, with the bell unless the settings turn it off."""
        who = self.session.display_name(message["author"])
        if viewing:
            self._mark_read(message["conv_id"])
        if message.get("mention"):
            self.app.notify(f"{who}: {message['text'][:80]}", title="You were mentioned")
            if self.mention_bell:
                self.app.bell()
        elif not viewing:
            self.app.notify(f"{who}: {message['text'][:80]}", title="New message")

    def _mark_read(self, conv_id: str) -> None:
        try:
            self.session.mark_read(conv_id)
        except MeshError as exc:
            self.app.notify(f"not marked read: {exc}", severity="warning")

    def _joined(self, room_id: str) -> bool:
        return self.session.public_key in self.session.room_state(room_id).members

    def _on_node_event(self, kind: str, data: dict[str, Any]) -> None:
        who = self.session.display_name(data["peer_id"])
        if kind == "dial_linked":
            self.app.notify(f"linked to {who} ({data['address']})", title="Linked")
        elif kind == "dial_failed" and data["source"] != "address record":
            # learned addresses go stale; only the user's own dials (and the LAN's) are worth a word
            retry = (
                ""
                if data["next_try_in"] is None
                else f"; trying again in {data['next_try_in']:g} s"
            )
            self.app.notify(
                f"{who} at {data['address']}: {data['last_error']}{retry}",
                title="Dial failed",
                severity="warning",
            )

    def _on_notes_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "cursor":
            self.query_one(NoteView).cursor_event(data)
        else:
            self.query_one(NoteView).note_event(data)

    def _on_files_event(self, kind: str, data: dict[str, Any]) -> None:
        """An attachment announced, under way or arrived: the status bar and its message."""
        if self.session.closed:
            return
        bar = self.query_one(StatusBar)
        if kind == "file_progress":
            bar.transfers[data["file_id"]] = data
        elif kind == "file_complete":
            bar.transfers.pop(data["file_id"], None)
            self.app.notify(f"{data['name']} is here", title="File received")
        elif kind == "file_offered" and data["state"] == "offered":
            self.app.notify(
                f"{data['name']}: meshnotes files get {data['file_id'][:12]} OUT fetches it",
                title="File offered",
            )
        bar.refresh_status(self._catching_up)
        self.query_one(ChatView).redraw(data.get("msg_id"))

    def action_send_file(self) -> None:
        if self.current is None or self.current[0] == "note":
            self.app.notify("open a room or a conversation first", severity="warning")
            return
        conv_id = self.current[1]

        def send(path: str | None) -> None:
            if path:
                self.run_worker(self._send_file(conv_id, Path(path).expanduser()))

        self.app.push_screen(
            FilePicker("Send which file? (pick it, or type or paste its path)"), send
        )

    async def _send_file(self, conv_id: str, path: Path) -> None:
        self.app.notify(f"sealing {path.name} …")
        try:
            sent = await self.session.send_file(conv_id, path)
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify(f"sent {sent['name']}", title="File sent")

    def _on_session_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "error":
            self.app.notify(str(data.get("message")), severity="error")
        elif kind == "stopped":  # an attached UI's node went away: nothing works any more
            self.post_message(self.NodeStopped(f"the node for {data.get('home')} stopped"))

    # -- opening -------------------------------------------------------------------------

    def on_sidebar_opened(self, event: Sidebar.Opened) -> None:
        self.open(event.kind, event.target)

    def open(self, kind: str, target: str, focus: str | None = None) -> None:
        """Open a room, a direct conversation (at message `focus`, if given) or a note."""
        sidebar = self.query_one(Sidebar)
        self.current = (kind, target)
        sidebar.current = target
        switcher = self.query_one(ContentSwitcher)
        if kind == "note":
            switcher.current = "note"
            self.query_one(NoteView).show(target)
        else:
            switcher.current = "chat"
            self.query_one(ChatView).show(kind, target, focus)
            if target in self.session.unread():
                self._mark_read(target)
        sidebar.refresh_entries()

    def action_delete_note(self) -> None:
        if self.current is None or self.current[0] != "note":
            self.app.notify("open a note first", severity="warning")
            return
        note_id = self.current[1]

        def delete(answer: str) -> None:
            if answer.lower().startswith("y"):
                self.session.delete_note(note_id)
                self.current = None
                self.query_one(ContentSwitcher).current = "welcome"
                self.app.notify("deleted for everyone; Undelete note (ctrl+p) brings it back")

        self._ask("Delete this note for every member? (y/n)", delete)

    def action_undelete_note(self) -> None:
        def undelete(name: str) -> None:
            note_id = self.session.delete_note(name, undo=True)
            self.app.notify("undeleted")
            self.open("note", note_id)

        self._ask("Undelete which note? (its title or id)", undelete)

    def action_history(self) -> None:
        if self.current is None or self.current[0] != "note":
            self.app.notify("open a note first", severity="warning")
            return
        from tui.history_screen import HistoryScreen

        note_id = self.current[1]
        versions = self.session.note_history(note_id)
        if not versions:
            self.app.notify("no versions yet: one is kept when a burst of edits ends")
            return

        def restore(version: int | None) -> None:
            if version is not None:
                self._try(lambda: self.session.restore_note(note_id, version))
                self.app.notify(f"restored version {version}")

        self.app.push_screen(HistoryScreen(self.session, note_id, versions), restore)

    def action_toggle_preview(self) -> None:
        if self.current is not None and self.current[0] == "note":
            self.query_one(NoteView).action_toggle_preview()

    def action_search(self) -> None:
        from tui.search_screen import SearchScreen

        def found(where: tuple[str, str] | None) -> None:
            if where is None:
                return
            conv_id, msg_id = where
            conv = self.session.conversation(conv_id)
            self.open(
                "dm" if conv is not None and conv["kind"] == "dm" else "room", conv_id, msg_id
            )

        self.app.push_screen(SearchScreen(self.session), found)

    def action_focus_sidebar(self) -> None:
        self.query_one(Sidebar).focus()

    # -- actions ---------------------------------------------------------------------

    def _ask(self, question: str, then: Callable[[str], None], placeholder: str = "") -> None:
        def done(answer: str | None) -> None:
            if answer:
                try:
                    then(answer)
                except MeshError as exc:
                    self.app.notify(str(exc), severity="error")
                self.query_one(Sidebar).refresh_entries()

        self.app.push_screen(Prompt(question, placeholder), done)

    def _room(self) -> str | None:
        """The room the open conversation or note belongs to, if any."""
        if self.current is None:
            return None
        kind, target = self.current
        if kind == "room":
            return target
        if kind == "note":
            rooms = (n["room_id"] for n in self.session.notes() if n["note_id"] == target)
            return next(rooms, None)
        return None

    def _need_room(self) -> str | None:
        room = self._room()
        if room is None:
            self.app.notify("open a room (or one of its notes) first", severity="warning")
        return room

    def action_new_room(self) -> None:
        def create(name: str) -> None:
            room = self.session.new_room(name)
            self.app.notify(f"room #{name} created; press i to invite people")
            self.open("room", room)

        self._ask("Name of the new room", create, "e.g. team")

    def action_invite(self) -> None:
        room = self._need_room()
        if room is not None:
            self._ask(
                "Invite whom? (nickname, peer id or prefix)",
                lambda peer: self._notify_result(self.session.invite(room, peer), "invited"),
            )

    def action_remove_member(self) -> None:
        room = self._need_room()
        if room is not None:
            self._ask(
                "Remove whom? They will read nothing said after.",
                lambda peer: self._notify_result(self.session.remove(room, peer), "removed"),
            )

    def _notify_result(self, result: dict[str, Any], key: str) -> None:
        self.app.notify(f"{key} {self.session.display_name(result[key])}")

    def action_join(self) -> None:
        room = self._need_room()
        if room is not None:
            try:
                self.session.join(room)
                self.app.notify("joined")
            except MeshError as exc:
                self.app.notify(str(exc), severity="error")

    def action_direct(self) -> None:
        def open_dm(peer: str) -> None:
            self.open("dm", self.session.direct_conversation(peer))

        self._ask("Message whom? (nickname, peer id or prefix)", open_dm)

    def action_new_note(self) -> None:
        room = self._need_room()
        if room is not None:
            self._ask(
                "Title of the new note",
                lambda title: self.open("note", self.session.new_note(room, title)),
            )

    def action_import_note(self) -> None:
        room = self._need_room()
        if room is not None:
            self._ask(
                "Import which Markdown file?",
                lambda path: self.open(
                    "note", self.session.import_note(room, Path(path).expanduser())
                ),
            )

    def action_export_note(self) -> None:
        if self.current is None or self.current[0] != "note":
            self.app.notify("open a note first", severity="warning")
            return
        note_id = self.current[1]

        def export(path: str) -> None:
            count = self.session.export_note(note_id, Path(path).expanduser())
            self.app.notify(f"wrote {count} characters to {path}")

        self._ask("Export to which file?", export, "e.g. ~/plan.md")

    def action_connect(self) -> None:
        def connect(address: str) -> None:
            # how the dial goes comes back as a notification (_on_node_event)
            self.session.connect(PeerAddress.parse(address))

        self._ask("Connect to (ws://HOST:PORT#PEERID)", connect)

    def action_peers(self) -> None:
        from tui.peers_screen import PeersScreen

        self.app.push_screen(PeersScreen(self.session))

    def action_help(self) -> None:
        from tui.help_screen import HelpScreen

        self.app.push_screen(HelpScreen())

    async def action_share_contact(self) -> None:
        from tui.invite_screen import InviteScreen

        try:
            invite = await self.session.make_invite()
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.push_screen(InviteScreen(invite))

    def action_add_from_invite(self) -> None:
        def add(code: str, nickname: str | None) -> None:
            result = self.session.accept_invite(code, add=True, name=nickname)
            dialing = "dialing it" if result["dialing"] else "it names no address to dial"
            self.app.notify(f"added {result['name'] or result['peer_id'][:8]}; {dialing}")
            self.query_one(Sidebar).refresh_entries()

        def ask_nickname(code: str) -> None:
            # a bad code is one notification now, before the nickname is asked
            invite = Invite.decode(code, time.time())
            self.app.push_screen(
                Prompt(
                    "Nickname for this contact (Enter keeps the name it gives itself)",
                    "e.g. bob",
                    invite.name,
                ),
                lambda nickname: self._try(lambda: add(code, nickname or invite.name or None)),
            )

        self._ask("Add a contact from an invite code", ask_nickname, "meshnotes:1:...")

    def _try(self, call: Callable[[], None]) -> None:
        """Run a dialog's action; a refusal is a notification."""
        try:
            call()
        except MeshError as exc:
            self.app.notify(str(exc), severity="error")
