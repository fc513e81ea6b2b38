"""Collaborators' cursors: Yjs awareness for each note, over the mesh and through the bridge.

Each note has a ``pycrdt.Awareness`` (the Yjs awareness protocol: per client
id a clock and a JSON state). This peer's own state, set from its UI, is
``{"user": {"name", "color"}, "cursor": {"anchor", "head"}}`` where anchor and
head are Yjs relative positions (``StickyIndex.to_json``), the shape Yjs
editors' cursor plugins read. Awareness updates travel:

- over the mesh as ``awareness`` signals to the note's room (chat/signals.py:
  sealed with the room's key, never stored), at most one per note every
  `SEND_EVERY` seconds (the latest state goes out when the wait ends);
- to and from the Yjs bridge's clients (crdt/bridge.py): what a bridge client
  says goes to the mesh as this peer's, and what the mesh says reaches them.

A peer may speak only for the client ids it used first: an entry naming a
client id another author holds is dropped (``awareness_dropped_foreign``), so
one member cannot move or rename another's cursor. The name shown with a
cursor is the one this peer knows the author by, not the one it claims.
Front ends hear ``("cursor", {"note_id", "peer_id", "name", "color", "index"})``
(`index`: a character offset in the note's text, None once the cursor is gone).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import pycrdt

from chat.signals import Signals
from crdt.note import Note
from crdt.notes import Notes
from mesh.errors import MeshError
from mesh.wire.identity import encode_peer_id

log = logging.getLogger("meshnotes.notes")

#: at most one awareness signal per note this often (seconds)
SEND_EVERY = 0.2
#: client ids one author may speak for in one note (its UI and its bridge's editors)
MAX_CLIENTS = 16
#: cursor colours, picked by the author's id: the same person has the same colour everywhere
COLOURS = ("#e06c75", "#61afef", "#98c379", "#c678dd", "#e5c07b", "#56b6c2", "#d19a66")

AwarenessHook = Callable[[str, bytes, object], None]


def colour_of(peer_id: str) -> str:
    return COLOURS[hashlib.blake2b(peer_id.encode(), digest_size=1).digest()[0] % len(COLOURS)]


def sticky(note: Note, index: int) -> dict[str, Any]:
    """A relative position (Yjs JSON) for character `index` of the note's text."""
    text = note.text
    index = max(0, min(index, len(text)))
    offset = len(text[:index].encode())  # pycrdt counts UTF-8 bytes
    # the character after, as Yjs editors stick a cursor; at the very end (where pycrdt has
    # none after, and panics) the one before
    assoc = pycrdt.Assoc.AFTER if index < len(text) else pycrdt.Assoc.BEFORE
    return pycrdt.StickyIndex.new(note.body, offset, assoc).to_json()


def unstick(note: Note, position: object) -> int | None:
    """The character offset a relative position stands at now, or None if it is not one."""
    if not isinstance(position, dict):
        return None
    try:
        offset = pycrdt.StickyIndex.from_json(position, note.body).get_index()
    except BaseException as exc:  # pycrdt raises (or panics) on a malformed position
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        return None
    return len(note.text.encode()[:offset].decode("utf-8", errors="ignore"))


def _entries(update: bytes) -> list[tuple[int, int, str]]:
    """The (client id, clock, state JSON) entries of an awareness update; ValueError unless it
    is exactly one (each state a JSON object, or empty/null for a client gone)."""
    decoder = pycrdt.Decoder(update)
    try:
        entries = []
        for _ in range(decoder.read_var_uint()):
            client, clock = decoder.read_var_uint(), decoder.read_var_uint()
            entries.append((client, clock, decoder.read_var_string()))
    except Exception as exc:  # pycrdt's decoder raises plain errors on a short buffer
        raise ValueError(f"not an awareness update: {exc}") from exc
    try:
        for _, _, state in entries:
            if state not in ("", "null") and not isinstance(json.loads(state), dict):
                raise ValueError("an awareness state is not a JSON object")
    except RecursionError as exc:  # nested past what json reads
        raise ValueError("an awareness state nested too deep") from exc
    if _encode(entries) != update:  # what a lenient read let through: cut short, or more
        raise ValueError("not an awareness update: its lengths do not add up")
    return entries


def _encode(entries: list[tuple[int, int, str]]) -> bytes:
    encoder = pycrdt.Encoder()
    encoder.write_var_uint(len(entries))
    for client, clock, state in entries:
        encoder.write_var_uint(client)
        encoder.write_var_uint(clock)
        encoder.write_var_string(state)
    return bytes(encoder.to_bytes())


class Cursors:
    """The awareness of one peer's notes."""

    def __init__(self, notes: Notes, signals: Signals, own_name: str) -> None:
        self.notes = notes
        self.signals = signals
        self.own_name = own_name
        self.me = encode_peer_id(signals.node.identity.public_key)
        self.counters = notes.counters
        #: told (note_id, update, origin) of every awareness update to pass to bridge clients
        self.hooks: list[AwarenessHook] = []
        self._awareness: dict[str, pycrdt.Awareness] = {}
        self._owners: dict[str, dict[int, bytes]] = {}  # note_id -> client id -> author
        self._last_sent: dict[str, float] = {}
        self._due: dict[str, asyncio.TimerHandle] = {}
        self._bridged: dict[tuple[str, object], set[int]] = {}  # a bridge client's client ids
        signals.handlers["awareness"] = self._heard

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def awareness(self, note_id: str) -> pycrdt.Awareness:
        awareness = self._awareness.get(note_id)
        if awareness is None:
            awareness = pycrdt.Awareness(self.notes.document(note_id).doc)
            awareness.set_local_state(None)  # no cursor of ours until the UI shows one
            self._awareness[note_id] = awareness
            owners = self._owners.setdefault(note_id, {})
            owners[awareness.client_id] = self.signals.node.identity.public_key
        return awareness

    # -- this peer's cursor --------------------------------------------------------------

    def set_cursor(self, note: str, anchor: int, head: int | None = None) -> None:
        """Show this peer's cursor (a selection from `anchor` to `head`) in a note to the others."""
        note_id = self.notes.resolve(note)
        document = self.notes.document(note_id)
        state = {
            "user": {"name": self.own_name or self.me[:8], "color": colour_of(self.me)},
            "cursor": {
                "anchor": sticky(document, anchor),
                "head": sticky(document, anchor if head is None else head),
            },
        }
        awareness = self.awareness(note_id)
        awareness.set_local_state(state)
        self._changed(note_id, awareness.encode_awareness_update([awareness.client_id]), None)

    def clear_cursor(self, note: str) -> None:
        """This peer no longer shows a cursor in the note (its view closed)."""
        note_id = self.notes.resolve(note)
        awareness = self._awareness.get(note_id)
        if awareness is not None and awareness.get_local_state() is not None:
            awareness.set_local_state(None)
            self._changed(note_id, awareness.encode_awareness_update([awareness.client_id]), None)

    # -- the bridge's clients --------------------------------------------------------

    def from_bridge(self, note_id: str, update: bytes, origin: object) -> None:
        """An awareness message from a bridge client: this peer's, so it goes to the mesh too."""
        entries = self._claimed(note_id, update, self.signals.node.identity.public_key)
        if not entries:
            return
        update = _encode(entries)
        self.awareness(note_id).apply_awareness_update(update, origin)
        self._bridged.setdefault((note_id, origin), set()).update(c for c, _, _ in entries)
        self._changed(note_id, update, origin)

    def _claimed(self, note_id: str, update: bytes, author: bytes) -> list[tuple[int, int, str]]:
        """The entries of an awareness update that `author` may speak for: client ids it used
        first (the others, and an update that does not decode, are dropped and counted)."""
        try:
            entries = _entries(update)
        except ValueError:
            self._count("awareness_dropped_malformed")
            return []
        owners = self._owners.setdefault(note_id, {})
        held = sum(1 for owner in owners.values() if owner == author)
        kept = []
        for entry in entries:
            if entry[0] not in owners:
                if held >= MAX_CLIENTS:  # a peer has a UI and a few editors, not thousands
                    self._count("awareness_dropped_too_many")
                    continue
                owners[entry[0]] = author
                held += 1
            if owners[entry[0]] == author:
                kept.append(entry)
            else:
                self._count("awareness_dropped_foreign")
        return kept

    def bridge_closed(self, note_id: str, origin: object) -> None:
        """A bridge client went away: its cursors go too, for everyone (as y-websocket does)."""
        clients = self._bridged.pop((note_id, origin), set())
        awareness = self._awareness.get(note_id)
        if awareness is None:
            return
        gone = [
            (client, awareness.meta[client]["clock"] + 1, "null")
            for client in sorted(clients)
            if client in awareness.states
        ]
        if gone:
            update = _encode(gone)
            awareness.apply_awareness_update(update, origin)
            self._changed(note_id, update, origin)

    # -- over the mesh -------------------------------------------------------------------

    def _changed(self, note_id: str, update: bytes, origin: object) -> None:
        for hook in self.hooks:
            hook(note_id, update, origin)
        self._send_soon(note_id)

    def _send_soon(self, note_id: str) -> None:
        """Send the note's states of this peer's clients now, or when SEND_EVERY has passed."""
        if note_id in self._due:
            return  # already due: it will send the latest states
        wait = self._last_sent.get(note_id, -SEND_EVERY) + SEND_EVERY - self.signals.node.clock()
        if wait <= 0:
            self._send(note_id)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script): send now
            self._send(note_id)
            return
        self._due[note_id] = loop.call_later(wait, self._send, note_id)

    def stop(self) -> None:
        """Send what is due now: the node is stopping, and a timer left running would find
        its database closed."""
        for note_id, handle in list(self._due.items()):
            handle.cancel()
            try:
                self._send(note_id)
            except MeshError as exc:  # the cursor does not show; nothing else is lost
                log.info("cursor of note %s not sent at stop: %s", note_id, exc)

    def _send(self, note_id: str) -> None:
        self._due.pop(note_id, None)
        self._last_sent[note_id] = self.signals.node.clock()
        awareness = self.awareness(note_id)
        me = self.signals.node.identity.public_key
        ours = [
            client
            for client, author in self._owners.get(note_id, {}).items()
            if author == me
            and (client in awareness.states or awareness.meta.get(client, {}).get("clock"))
        ]  # not a client of ours that never showed anything
        update = awareness.encode_awareness_update(ours)
        room = self.notes.room_of(note_id)
        if room is not None and ours:
            self.signals.to_room(room, "awareness", {"note": note_id, "update": update})

    def _heard(self, conv_id: str, author: bytes, body: dict[str, Any]) -> None:
        note_id, update = body.get("note"), body.get("update")
        if not isinstance(note_id, str) or not isinstance(update, bytes):
            self._count("awareness_dropped_malformed")
            return
        if self.notes.room_of(note_id) != conv_id:
            self._count("awareness_dropped_wrong_room")
            return
        kept = self._claimed(note_id, update, author)
        if not kept:
            return
        update = _encode(kept)
        awareness = self.awareness(note_id)
        awareness.apply_awareness_update(update, author)
        for hook in self.hooks:
            hook(note_id, update, author)
        self._emit(note_id, author)

    def _emit(self, note_id: str, author: bytes) -> None:
        """Tell the front ends where the author's cursor is now: of its clients in the note
        (its UI, its bridge editors), the one heard from last that shows a cursor."""
        awareness = self.awareness(note_id)
        clients = [c for c, owner in self._owners.get(note_id, {}).items() if owner == author]
        latest: tuple[int, object] | None = None
        for client in clients:
            state = awareness.states.get(client)
            cursor = state.get("cursor") if isinstance(state, dict) else None
            updated = awareness.meta.get(client, {}).get("lastUpdated", 0)
            if isinstance(cursor, dict) and (latest is None or updated >= latest[0]):
                latest = (updated, cursor.get("head"))
        document = self.notes.document(note_id)
        peer_id = encode_peer_id(author)
        self.notes.documents.emit(
            "cursor",
            {
                "note_id": note_id,
                "peer_id": peer_id,
                "name": self.notes.chat.contacts.display_name(peer_id),
                "color": colour_of(peer_id),
                "index": None if latest is None else unstick(document, latest[1]),
            },
        )
