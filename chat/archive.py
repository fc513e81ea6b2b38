"""The chat as stored: contacts, rooms and history read from a home's database, no node.

What ``history``, ``contacts`` and ``room list`` show when no node runs for the
home (a node may also be running and writing: open the store with
:meth:`mesh.storage.store.Store.open_readonly`). Each class here is the chat
layer's own class with its read methods only: the node-free constructor sets
what those read (the store, the own public key), and none of them sends,
writes, or asks a node. Only the read methods named in each docstring may be called.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from chat import tables
from chat.contacts import MIGRATIONS, Contacts
from chat.reader import ChatReader
from mesh.storage.store import Store
from mesh.wire.peerid import encode_peer_id

if TYPE_CHECKING:
    from chat.rooms import Rooms


class ContactBook(Contacts):
    """The contact list, read only: resolve, get, all, name_of, own_name_of, display_name,
    is_contact."""

    def __init__(self, store: Store, own_key: bytes) -> None:  # no node: see the module
        self.store = store
        self.own_key = own_key
        store.migrate_component("names", MIGRATIONS)  # read only: checks the version, no more

    def _known_peers(self) -> set[str]:
        return set()  # without a node, only the peers the database names


class ChatArchive(ChatReader):
    """A home's chat, read only: the reads of :class:`chat.reader.ChatReader` (history,
    search, unread, ...), the `contacts` above, and the `rooms`. It is no running chat
    (:class:`chat.messages.Chat`): reading needs neither the node nor its imports."""

    def __init__(self, store: Store, own_key: bytes) -> None:  # no node: see the module
        self.store = store
        store.migrate_component("chat", tables.MIGRATIONS)  # read only: checks the version
        self.me = encode_peer_id(own_key)
        self.contacts = ContactBook(store, own_key)

    @functools.cached_property
    def rooms(self) -> Rooms:  # type: ignore[override]  # an attribute, set when first read
        """The rooms, read only (:class:`chat.rooms.RoomBook`): made when first asked for, as
        their module folds signed events (PyNaCl, msgpack), which a read of history skips."""
        from chat.rooms import RoomBook

        return RoomBook(self.store)
