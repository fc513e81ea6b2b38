"""The chat as stored: contacts, rooms and history read from a home's database, no node.

What ``history``, ``contacts`` and ``room list`` show when no node runs for the
home (a node may also be running and writing: open the store with
:meth:`mesh.storage.store.Store.open_readonly`). Each class here is the chat
layer's own class with its read methods only: the node-free constructor sets
what those read (the store, the own public key), and none of them sends,
writes, or asks a node. Only the read methods named in each docstring may be called.
"""

from __future__ import annotations

from chat.contacts import MIGRATIONS, Contacts
from chat.messages import Chat
from chat.room import RoomState
from chat.rooms import Rooms
from mesh.storage.store import Store
from mesh.wire.identity import encode_peer_id


class ContactBook(Contacts):
    """The contact list, read only: resolve, get, all, name_of, is_contact."""

    def __init__(self, store: Store, own_key: bytes) -> None:  # no node: see the module
        self.store = store
        self.own_key = own_key
        store.migrate_component("names", MIGRATIONS)  # read only: checks the version, no more

    def _known_peers(self) -> set[str]:
        return set()  # without a node, only the peers the database names


class RoomBook(Rooms):
    """The rooms, read only: resolve, state, joined, all."""

    def __init__(self, store: Store) -> None:  # no node: see the module
        self.store = store
        self._states: dict[str, RoomState] = {}


class ChatArchive(Chat):
    """A home's chat, read only: resolve_conversation, conversations, history, and the
    `contacts` and `rooms` above."""

    def __init__(self, store: Store, own_key: bytes) -> None:  # no node: see the module
        self.store = store
        self.me = encode_peer_id(own_key)
        self.contacts = ContactBook(store, own_key)
        self.rooms = RoomBook(store)
