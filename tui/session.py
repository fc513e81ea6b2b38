"""What the terminal UI talks to: a peer's chat, notes and node, in the process or not.

:class:`Session` is everything the screens ask for, in one flat API. Two
kinds implement it:

- :class:`LocalSession` runs the node in the UI's own process (``meshnotes``
  on a home whose node is not running, and the demo);
- :class:`tui.attached.AttachedSession` attaches to the node that runs for the
  home (``meshnotes run --headless``) over its control socket: it reads the
  database, calls the node's verbs, and hears its events; quitting the UI
  leaves the node running.

Calls that change something raise MeshError with one line for the user.
Events reach the UI as ``listener(source, kind, data)`` with source "chat",
"notes", "node" or "files", the kinds the layers emit.
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chat.daemon import Daemon
from chat.files.holdings import Holdings
from chat.messages import Chat
from chat.reader import ChatReader
from chat.readstate import read_by
from chat.room import RoomState
from crdt.note import Note
from crdt.notes import Notes
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import Node, NodeConfig
from mesh.wire.address import PeerAddress
from mesh.wire.identity import decode_peer_id
from tui.session_files import Attachments

EventListener = Callable[[str, str, dict[str, Any]], None]


def unread_by_conversation(counts: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What ``unread --json`` lists, by conversation id."""
    return {c["conv"]: {"unread": c["unread"], "mentions": c["mentions"]} for c in counts}


class Session(Attachments, ABC):
    """A peer as the UI sees it; start it inside the UI's event loop."""

    def __init__(self) -> None:
        self.listeners: list[EventListener] = []
        #: set by stop(): the screens' timers read nothing more (the database is closed)
        self.closed = False
        #: a line the UI shows once when it starts (e.g. that the store is not encrypted)
        self.notice: str | None = None

    def emit(self, source: str, kind: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(source, kind, data)

    # -- lifecycle -------------------------------------------------------------------

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @property
    def attached(self) -> bool:
        """Whether the node runs in another process (and goes on after the UI quits)."""
        return False

    # -- who and where ---------------------------------------------------------------

    @property
    @abstractmethod
    def public_key(self) -> bytes: ...

    @property
    @abstractmethod
    def me(self) -> str:
        """This peer's id."""

    @abstractmethod
    def addresses_for_others(self) -> list[str]: ...

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """What ``status --json`` shows (for an attached UI, as of its last poll)."""

    # -- reads: the database, through the chat and notes layers' read code ---------------
    # (both kinds of session read the same way: only what `chat` and `notebook` are differs)

    @property
    @abstractmethod
    def chat(self) -> ChatReader:
        """The chat layer to read (a running node's, or chat.archive's over the database)."""

    @property
    @abstractmethod
    def notebook(self) -> Notes:
        """The notes layer to read (a running node's, or crdt.notebook's over the database)."""

    def display_name(self, peer_id: str) -> str:
        """'you', a contact's nickname, else the name the peer announced, else a short id."""
        if peer_id == self.me:
            return "you"
        return self.chat.contacts.display_name(peer_id)

    def rooms(self) -> list[dict[str, Any]]:
        return self.chat.rooms.all()

    def room_state(self, room_id: str) -> RoomState:
        return self.chat.rooms.state(room_id)

    def conversations(self) -> list[dict[str, Any]]:
        return self.chat.conversations()

    def conversation(self, conv_id: str) -> dict[str, Any] | None:
        return self.chat.conversation(conv_id)

    def history(
        self, conv_id: str, limit: int, around: str | None = None, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The last `limit` messages, or (`around` a message id) the `limit` about it, or
        (`before` one) the `limit` just before it."""
        return self.chat.history(conv_id, limit, around, before)

    def search(self, query: str, conv_id: str | None = None) -> list[dict[str, Any]]:
        """[{id, conv, author, text, ts}] best first (chat.search)."""
        return self.chat.search(query, conv_id)

    def unread(self) -> dict[str, dict[str, int]]:
        """{conv_id: {"unread", "mentions"}} of the conversations with unread messages."""
        return unread_by_conversation(self.chat.unread())

    def contacts(self) -> list[dict[str, Any]]:
        return self.chat.contacts.all()

    def contact(self, peer_id: str) -> dict[str, Any]:
        return self.chat.contacts.get(peer_id)

    def resolve_peer(self, name: str) -> bytes:
        return self.chat.contacts.resolve(name)

    def own_name_of(self, peer_id: str) -> str | None:
        return self.chat.contacts.own_name_of(peer_id)

    def read_by(self, conv_id: str) -> dict[str, str]:
        """Who read a conversation up to which message, as they told: {peer_id: msg_id}."""
        return read_by(self.chat.store, conv_id)

    def notes(self, room: str | None = None) -> list[dict[str, Any]]:
        return self.notebook.all(room)

    def note_history(self, note_id: str) -> list[dict[str, Any]]:
        """The note's versions, oldest first: {version, author, ts, title, chars}."""
        return self.notebook.versions.all(note_id)

    def note_version(self, note_id: str, version: int) -> str:
        """The note's text as it was in a version."""
        return self.notebook.versions.text(note_id, version)

    @abstractmethod
    def presence(self, peer_id: str) -> dict[str, Any]:
        """{"online", "last_seen"}: a live path to the peer now; when it was last seen."""

    # -- chat: changes ---------------------------------------------------------------

    @abstractmethod
    def say(self, room: str, text: str) -> str: ...

    @abstractmethod
    def send_direct(self, peer: str, text: str) -> str: ...

    @abstractmethod
    def direct_conversation(self, peer: str) -> str: ...

    @abstractmethod
    def reply(self, msg_id: str, text: str) -> str: ...

    @abstractmethod
    def edit(self, msg_id: str, text: str) -> str: ...

    @abstractmethod
    def delete(self, msg_id: str) -> str: ...

    @abstractmethod
    def react(self, msg_id: str, emoji: str) -> dict[str, Any]:
        """Toggle a reaction: {"id", "msg_id", "emoji", "on"}."""

    @abstractmethod
    def mark_read(self, conv_id: str) -> None: ...

    @abstractmethod
    def new_room(self, name: str) -> str: ...

    @abstractmethod
    def invite(self, room: str, peer: str) -> dict[str, Any]: ...

    @abstractmethod
    def remove(self, room: str, peer: str) -> dict[str, Any]: ...

    @abstractmethod
    def join(self, room: str) -> dict[str, Any]: ...

    @abstractmethod
    def typed(self, conv_id: str) -> None:
        """A keystroke in a conversation's input: its people may hear that you are typing."""

    @abstractmethod
    def add_contact(self, peer: str, name: str | None) -> dict[str, Any]: ...

    @abstractmethod
    def verify(self, peer: str, verified: bool) -> dict[str, Any]: ...

    @abstractmethod
    def connect(self, address: PeerAddress) -> None: ...

    @abstractmethod
    async def make_invite(self) -> dict[str, Any]: ...

    @abstractmethod
    def accept_invite(self, code: str, add: bool, name: str | None) -> dict[str, Any]: ...

    # -- notes -------------------------------------------------------------------------

    @abstractmethod
    def new_note(self, room: str, title: str) -> str: ...

    @abstractmethod
    def import_note(self, room: str, path: Path) -> str: ...

    @abstractmethod
    def export_note(self, note_id: str, path: Path) -> int: ...

    @abstractmethod
    def rename_note(self, note_id: str, title: str) -> None: ...

    @abstractmethod
    def delete_note(self, note: str, undo: bool = False) -> str:
        """Delete a note for every member (`undo`: undelete it); the note's id."""

    @abstractmethod
    def restore_note(self, note_id: str, version: int) -> None:
        """Make a version's text the note's, as one new edit."""

    @abstractmethod
    def open_note(self, note_id: str) -> Note:
        """The note's live document: edit it, and watch its `on_change`."""

    @abstractmethod
    def close_note(self, note_id: str) -> None:
        """Send the edits made to an opened note (the view closes)."""

    @abstractmethod
    def set_cursor(self, note_id: str, anchor: int | None, head: int | None = None) -> None:
        """Show your cursor (a selection from `anchor` to `head`, character offsets) in a note
        to the others; `anchor` None: show none."""


class LocalSession(Session):
    """A session whose node runs here: the daemon (node, chat) and the notes service."""

    def __init__(self, daemon: Daemon, service: NotesService) -> None:
        super().__init__()
        self.daemon = daemon
        self.service = service
        self.started = False  # this session started the daemon (and stops it)
        self.listening = False  # the daemon's events reach the session's listeners

    @classmethod
    def for_home(
        cls,
        home: Home,
        config: NodeConfig,
        bridge: tuple[str, int] | None = None,
        name: str = "",
        passphrase: str | None = None,
    ) -> LocalSession:
        """A session on `home`, creating its identity first if it has none."""
        if not home.has_identity():
            home.create_identity(name or os.environ.get("USER", ""), passphrase)
        identity, store_key = home.unlock(passphrase)
        service = NotesService(bridge=bridge)
        return cls(Daemon(home, identity, config, [service], store_key), service)

    async def start(self) -> None:
        """Start the daemon (unless it runs already: then the session only hears its events)."""
        if self.listening:
            return
        if not self.daemon.running:
            await self.daemon.start()
            self.started = True
        self.listening = True
        for source, listeners in (
            ("chat", self.chat.listeners),
            ("notes", self.notes_layer.listeners),
            ("node", self.node.listeners),
            ("files", self.daemon.files.listeners),
        ):
            listeners.append(functools.partial(self.emit, source))

    async def stop(self) -> None:
        """Stop the daemon, if this session started it."""
        self.closed = True
        if self.started:
            self.started = False
            await self.daemon.stop()

    @property
    def node(self) -> Node:
        return self.daemon.node

    @property
    def chat(self) -> Chat:
        return self.daemon.chat

    @property
    def notebook(self) -> Notes:
        return self.notes_layer

    @property
    def notes_layer(self) -> Notes:
        notes = self.service.notes
        assert notes is not None, "the session is not started"
        return notes

    @property
    def public_key(self) -> bytes:
        return self.daemon.identity.public_key

    @property
    def me(self) -> str:
        return self.daemon.identity.peer_id

    def addresses_for_others(self) -> list[str]:
        return self.node.addresses_for_others

    def status(self) -> dict[str, Any]:
        return self.daemon.status()

    def presence(self, peer_id: str) -> dict[str, Any]:
        assert self.daemon.presence is not None
        return self.daemon.presence.of(decode_peer_id(peer_id))

    def say(self, room: str, text: str) -> str:
        return self.chat.say(room, text)

    def send_direct(self, peer: str, text: str) -> str:
        return self.chat.send_direct(peer, text)

    def direct_conversation(self, peer: str) -> str:
        return self.chat.direct_conversation(peer)

    def reply(self, msg_id: str, text: str) -> str:
        return self.chat.reply(msg_id, text)

    def edit(self, msg_id: str, text: str) -> str:
        return self.chat.edit(msg_id, text)

    def delete(self, msg_id: str) -> str:
        return self.chat.delete(msg_id)

    def react(self, msg_id: str, emoji: str) -> dict[str, Any]:
        return self.chat.react(msg_id, emoji)

    def mark_read(self, conv_id: str) -> None:
        self.chat.mark_read(conv_id)

    def new_room(self, name: str) -> str:
        return self.chat.rooms.new(name)

    def invite(self, room: str, peer: str) -> dict[str, Any]:
        return self.chat.rooms.invite(room, peer)

    def remove(self, room: str, peer: str) -> dict[str, Any]:
        return self.chat.rooms.remove(room, peer)

    def join(self, room: str) -> dict[str, Any]:
        return self.chat.rooms.join(room)

    def typed(self, conv_id: str) -> None:
        assert self.daemon.typing is not None
        self.daemon.typing.typed(conv_id)

    def add_contact(self, peer: str, name: str | None) -> dict[str, Any]:
        return self.chat.contacts.add(peer, name)

    def verify(self, peer: str, verified: bool) -> dict[str, Any]:
        return self.chat.contacts.verify(peer, verified)

    def connect(self, address: PeerAddress) -> None:
        self.node.connect(address)

    async def make_invite(self) -> dict[str, Any]:
        return await self.daemon.make_invite()

    def accept_invite(self, code: str, add: bool, name: str | None) -> dict[str, Any]:
        return self.daemon.accept_invite(code, add=add, name=name)

    @property
    def holdings(self) -> Holdings | None:
        return self.daemon.files.holdings

    async def send_file(self, conv_id: str, path: Path) -> dict[str, Any]:
        return await self.daemon.files.send(conv_id, str(path))

    def fetch_file(self, file: str) -> dict[str, Any]:
        return self.daemon.files.fetch(file)

    async def save_file(self, file: str, out: Path) -> dict[str, Any]:
        return await self.daemon.files.save(file, str(out))

    def new_note(self, room: str, title: str) -> str:
        return self.notes_layer.new(room, title)

    def import_note(self, room: str, path: Path) -> str:
        return self.notes_layer.import_file(room, path)

    def export_note(self, note_id: str, path: Path) -> int:
        return self.notes_layer.export(note_id, path)

    def rename_note(self, note_id: str, title: str) -> None:
        self.notes_layer.rename(note_id, title)

    def delete_note(self, note: str, undo: bool = False) -> str:
        return self.notes_layer.undelete(note) if undo else self.notes_layer.delete(note)

    def restore_note(self, note_id: str, version: int) -> None:
        self.notes_layer.restore(note_id, version)

    def open_note(self, note_id: str) -> Note:
        return self.notes_layer.get(note_id)

    def close_note(self, note_id: str) -> None:
        self.notes_layer.flush(note_id)

    def set_cursor(self, note_id: str, anchor: int | None, head: int | None = None) -> None:
        cursors = self.service.cursors
        assert cursors is not None
        if anchor is None:
            cursors.clear_cursor(note_id)
        else:
            cursors.set_cursor(note_id, anchor, head)
