"""The notes as stored: read from a home's database with no node (``note list``, ``cat``,
``export`` while no node runs).

As :mod:`chat.archive` does for the chat, the classes here are the notes
layer's own classes built without a node, over a store opened with
:meth:`mesh.storage.store.Store.open_readonly`: documents are loaded from
their signed checkpoint and stored updates exactly as a running node loads
them, and nothing is written or sent. Only the read methods named in each
docstring may be called.
"""

from __future__ import annotations

import time

from chat.archive import ChatArchive
from crdt.documents import Documents
from crdt.note import Note
from crdt.notes import MIGRATIONS, Notes
from crdt.versions import Versions
from mesh.storage.store import Store


class StoredDocuments(Documents):
    """The notes' documents, loaded from the store, read only: open."""

    def __init__(self, store: Store, own_key: bytes) -> None:  # no node: see the module
        self.store = store
        self.own_key = own_key
        self.notes: dict[str, Note] = {}
        self._held = {}
        self._on_ready = lambda: None
        self._on_local_edit = lambda note_id, at_once: None  # a reader's edits go nowhere


class NoteBook(Notes):
    """A home's notes, read only: resolve, all, cat, export."""

    def __init__(self, chat: ChatArchive, store: Store) -> None:  # no node: see the module
        # the notes' reads use the chat's rooms and contacts only, which the archive has
        self.chat = chat  # type: ignore[assignment]
        self.store = store
        store.migrate_component("notes", MIGRATIONS)  # read only: checks the version, no more
        self.documents = StoredDocuments(store, chat.contacts.own_key)
        self.notes = self.documents.notes
        self.versions = Versions(store, self.documents.open, time.time)
