"""A UI attached to the node that runs for its home (``meshnotes run --headless``).

The node keeps running when the UI quits; the UI holds no keys. It:

- reads the home's database directly, read-only (history, rooms, contacts,
  notes: the chat and notes layers' own read code, :mod:`chat.archive` and
  :mod:`crdt.notebook`), while the node writes it;
- asks the node to change anything, through the control verbs the CLI uses;
- hears the node's events on the control socket's event stream
  (:func:`mesh.runtime.control.subscribe`) and polls its status each second;
- edits a note in a copy of its document: the node sends the copy's whole
  state (``note.state``), the copy's edits go back as Yjs updates
  (``note.edit``), and the note's other updates come on the stream, under the
  note's topic, while the note is open.

When the node stops, the stream ends and the UI is told (source "session",
kind "stopped"), once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from pathlib import Path
from typing import Any

from chat.archive import ChatArchive
from chat.client import Verb
from chat.files.holdings import Holdings
from chat.presence import last_seen
from chat.reader import ChatReader
from crdt.client import Client, NoteVerb
from crdt.note import Note
from crdt.notebook import NoteBook
from crdt.notes import Notes
from crdt.textfiles import read_text_file, write_text_file
from crdt.updates import merge_many
from mesh.errors import MeshError
from mesh.runtime import control
from mesh.runtime.home import Home
from mesh.wire.address import PeerAddress
from mesh.wire.identity import decode_peer_id
from tui.passphrase import store_key
from tui.session import Session

log = logging.getLogger("meshnotes.tui")

#: how often the node's status is asked for (the status bar and sidebar show it)
POLL_INTERVAL = 1.0
#: how long a verb may take before the UI says the node does not answer
VERB_TIMEOUT = 10.0
#: how long local note edits gather before they go to the node as one update
EDIT_WINDOW = 0.05


class AttachedSession(Session):
    """A session whose node runs in another process, reached over the home's control socket."""

    def __init__(self, home: Home) -> None:
        super().__init__()
        self.home = home
        peer_id, self.name = home.public_info()
        self._public_key = decode_peer_id(peer_id)
        self.client = Client(home.control_socket)
        self.store = home.open_store_readonly(store_key(home))
        self.archive = ChatArchive(self.store, self._public_key)
        self.stored_notes = NoteBook(self.archive, self.store)
        self._holdings: Holdings | None = None
        self.origin = secrets.token_hex(8)  # names this UI's note edits
        self._status: dict[str, Any] = {}
        self._addresses: list[str] = []
        self._events: control.Events | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._open: dict[str, Note] = {}
        self._edited: set[str] = set()
        self._unsent: dict[str, list[bytes]] = {}  # edits the node did not take: sent again
        self._cursors: dict[str, dict[str, Any]] = {}  # the latest cursor per note, to send
        self._asking: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    @property
    def chat(self) -> ChatReader:
        return self.archive

    @property
    def notebook(self) -> Notes:
        return self.stored_notes

    @property
    def attached(self) -> bool:
        return True

    async def start(self) -> None:
        self._events = await control.subscribe(self.home.control_socket)
        hello = self._events.hello or {}
        self._addresses = list(hello.get("addresses") or [])
        await self._poll_once()
        self._tasks = [
            asyncio.create_task(self._listen(self._events)),
            asyncio.create_task(self._poll()),
            asyncio.create_task(self._send_edits()),
        ]

    async def stop(self) -> None:
        """Send the edits not sent yet and let go of the node (it keeps running)."""
        if self.closed:
            return
        self.closed = True
        for task in [*self._tasks, *self._asking]:
            task.cancel()
        for task in [*self._tasks, *self._asking]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for note_id in sorted(set(self._edited) | set(self._unsent)):
            with contextlib.suppress(MeshError):
                await self._send_edit(note_id)
        if self._events is not None:
            await self._events.close()
        self.store.close()

    # -- the node's events and status ----------------------------------------------

    async def _listen(self, events: control.Events) -> None:
        """Hand the stream's events on; when it ends, subscribe again (a stream cut off for
        falling behind, say), or tell the UI its node stopped."""
        while True:
            async for event in events:
                source, kind, data = event.get("source", ""), event["event"], event.get("data")
                if not isinstance(data, dict):
                    continue  # "overrun": what it missed is read again below
                if source == "notes" and kind == "note_update":
                    self._remote_update(data)
                    continue
                self.emit(source, kind, data)
            if self.closed:
                return
            try:
                events = self._events = await control.subscribe(
                    self.home.control_socket, set(self._open)
                )
                await self._catch_up_notes()
            except MeshError:
                self.emit("session", "stopped", {"home": str(self.home.root)})
                return

    async def _catch_up_notes(self) -> None:
        """The open notes' whole state again (updates missed while the stream was down):
        applying what the copy holds already changes nothing."""
        for note_id, note in list(self._open.items()):
            result = await control.request(
                self.home.control_socket, NoteVerb.STATE, {"note": note_id}, timeout=VERB_TIMEOUT
            )
            note.apply_update(base64.b64decode(result["state"]))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            with contextlib.suppress(MeshError):  # a node gone is the stream's to tell
                await self._poll_once()

    async def _poll_once(self) -> None:
        self._status = await control.request(
            self.home.control_socket, Verb.STATUS, timeout=VERB_TIMEOUT
        )

    def _call(self, verb: str, args: dict[str, Any]) -> Any:
        return self.client.call(verb, args, timeout=VERB_TIMEOUT)

    # -- who and where ---------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        return self._public_key

    @property
    def me(self) -> str:
        return self.chat.me

    def addresses_for_others(self) -> list[str]:
        return self._addresses

    def status(self) -> dict[str, Any]:
        return self._status

    def presence(self, peer_id: str) -> dict[str, Any]:
        routes = {route["dest"] for route in self._status.get("routes", [])}
        return {"online": peer_id in routes, "last_seen": last_seen(self.store, peer_id)}

    # -- chat: changes (the node) --------------------------------------------------------

    def say(self, room: str, text: str) -> str:
        return str(self.client.say(room, text)["id"])

    def send_direct(self, peer: str, text: str) -> str:
        return str(self.client.dm(peer, text)["id"])

    def direct_conversation(self, peer: str) -> str:
        return str(self.client.dm_open(peer)["conv_id"])

    def reply(self, msg_id: str, text: str) -> str:
        return str(self.client.reply(msg_id, text)["id"])

    def edit(self, msg_id: str, text: str) -> str:
        return str(self.client.edit(msg_id, text)["id"])

    def delete(self, msg_id: str) -> str:
        return str(self.client.delete(msg_id)["id"])

    def react(self, msg_id: str, emoji: str) -> dict[str, Any]:
        return self.client.react(msg_id, emoji)

    def mark_read(self, conv_id: str) -> None:
        self.client.mark_read(conv_id)

    def new_room(self, name: str) -> str:
        return str(self.client.room_new(name)["room_id"])

    def invite(self, room: str, peer: str) -> dict[str, Any]:
        return self.client.room_invite(room, peer)

    def remove(self, room: str, peer: str) -> dict[str, Any]:
        return self.client.room_remove(room, peer)

    def join(self, room: str) -> dict[str, Any]:
        return self.client.room_join(room)

    def typed(self, conv_id: str) -> None:
        self._later(Verb.TYPING, {"conversation": conv_id})

    def add_contact(self, peer: str, name: str | None) -> dict[str, Any]:
        return self.client.contacts_add(peer, name)

    def verify(self, peer: str, verified: bool) -> dict[str, Any]:
        return self.client.contacts_verify(peer, verified)

    def connect(self, address: PeerAddress) -> None:
        self.client.connect(str(address))

    async def make_invite(self) -> dict[str, Any]:
        result: dict[str, Any] = await control.request(
            self.home.control_socket, Verb.INVITE, timeout=VERB_TIMEOUT
        )
        return result

    def accept_invite(self, code: str, add: bool, name: str | None) -> dict[str, Any]:
        return self.client.invite_accept(code, add, name)

    # -- notes ---------------------------------------------------------------------------

    @property
    def holdings(self) -> Holdings | None:
        if self._holdings is None:
            try:
                self._holdings = Holdings(self.store, self.home.root / "files", budget=0)
            except MeshError:  # its tables are newer or older than this program's
                return None
        return self._holdings

    async def send_file(self, conv_id: str, path: Path) -> dict[str, Any]:
        # sealing a large file takes a while: the UI goes on meanwhile
        return await asyncio.to_thread(self.client.send_file, conv_id, str(path.resolve()))

    def fetch_file(self, file: str) -> dict[str, Any]:
        return self.client.files_fetch(file)

    async def save_file(self, file: str, out: Path) -> dict[str, Any]:
        return await asyncio.to_thread(self.client.files_save, file, str(out.resolve()))

    def new_note(self, room: str, title: str) -> str:
        return str(self.client.note_new(room, title)["note_id"])

    def import_note(self, room: str, path: Path) -> str:
        return str(self.client.note_import(room, path.stem, read_text_file(path))["note_id"])

    def export_note(self, note_id: str, path: Path) -> int:
        return write_text_file(path, self.client.note_export(note_id)["text"])

    def rename_note(self, note_id: str, title: str) -> None:
        self.client.note_rename(note_id, title)

    def delete_note(self, note: str, undo: bool = False) -> str:
        return str(self.client.note_delete(note, undo=undo)["note_id"])

    def restore_note(self, note_id: str, version: int) -> None:
        self.client.note_restore(note_id, version)

    def open_note(self, note_id: str) -> Note:
        """A copy of the note, kept in step with the node's while it is open."""
        note = self._open.get(note_id)
        if note is not None:
            return note
        # follow first: an update made while the state is read comes again on the stream
        # (applying an update twice changes nothing)
        self._follow(set(self._open) | {note_id})
        try:
            state = base64.b64decode(self.client.note_state(note_id)["state"])
            note = Note()
            note.apply_update(state)
        except MeshError:
            self._follow(set(self._open))
            raise
        note.on_local_edit = lambda _now, n=note_id: self._local_edit(n)
        self._open[note_id] = note
        return note

    def close_note(self, note_id: str) -> None:
        """Send the copy's last edits now (the UI may be quitting) and stop following it."""
        self._edited.discard(note_id)
        update = self._gather(note_id)
        if update is not None:
            try:
                self._call(NoteVerb.EDIT, self._edit_args(note_id, update))
            except MeshError:
                self._unsent[note_id] = [update]  # kept for the next try; the view is told
                raise
        self._open.pop(note_id, None)
        self._follow(set(self._open))

    def set_cursor(self, note_id: str, anchor: int | None, head: int | None = None) -> None:
        # after the edits not sent yet, so that the node counts the offsets in the same text
        self._cursors[note_id] = {"note": note_id, "anchor": anchor, "head": head}
        self._wake.set()

    def _later(self, verb: str, args: dict[str, Any]) -> None:
        """Ask the node without waiting for its answer (a failure is a notification)."""

        async def ask() -> None:
            try:
                await control.request(self.home.control_socket, verb, args, timeout=VERB_TIMEOUT)
            except MeshError as exc:
                self.emit("session", "error", {"message": f"{verb}: {exc}"})

        task = asyncio.create_task(ask())
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)

    def _follow(self, topics: set[str]) -> None:
        if self._events is not None:
            self._events.follow(topics)

    def _remote_update(self, data: dict[str, Any]) -> None:
        note = self._open.get(str(data.get("note_id")))
        if note is None or data.get("origin") == self.origin:
            return  # not open here, or this UI's own edit coming back
        try:
            note.apply_update(base64.b64decode(str(data["update"])))
        except (MeshError, ValueError, KeyError) as exc:
            log.warning("a note update from the node could not be applied: %s", exc)

    def _local_edit(self, note_id: str) -> None:
        self._edited.add(note_id)
        self._wake.set()

    def _gather(self, note_id: str) -> bytes | None:
        """The edits made to the note's copy and not yet taken by the node, as one update."""
        parts = self._unsent.pop(note_id, [])
        note = self._open.get(note_id)
        update = None if note is None else note.take_local_update()
        if update is not None:
            parts.append(update)
        return merge_many(parts) if parts else None

    def _edit_args(self, note_id: str, update: bytes) -> dict[str, Any]:
        return {
            "note": note_id,
            "update": base64.b64encode(update).decode(),
            "origin": self.origin,
        }

    async def _send_edits(self) -> None:
        """Send the open notes' edits, gathered for EDIT_WINDOW, in the order they were made,
        then the latest cursor of each note."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(EDIT_WINDOW)
            self._wake.clear()
            for note_id in list(self._edited):
                self._edited.discard(note_id)
                try:
                    await self._send_edit(note_id)
                except MeshError as exc:
                    self.emit("session", "error", {"message": f"edit not sent: {exc}"})
            cursors, self._cursors = self._cursors, {}
            for args in cursors.values():
                with contextlib.suppress(MeshError):  # a cursor not shown is no loss
                    await control.request(
                        self.home.control_socket, NoteVerb.CURSOR, args, timeout=VERB_TIMEOUT
                    )

    async def _send_edit(self, note_id: str) -> None:
        update = self._gather(note_id)
        if update is None:
            return
        try:
            await control.request(
                self.home.control_socket,
                NoteVerb.EDIT,
                self._edit_args(note_id, update),
                timeout=VERB_TIMEOUT,
            )
        except BaseException:  # the node refused it, or stop() cancelled us mid-request
            self._unsent[note_id] = [update]  # sent again with the next edit, or at close
            raise
