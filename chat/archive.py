"""The chat as stored: contacts, rooms and history read from a home's database, no node.

What ``history``, ``contacts`` and ``room list`` show when no node runs for the
home (a node may also be running and writing: open the store with
:meth:`mesh.storage.store.Store.open_readonly`). Each class here is the chat
layer's own class with its read methods only: the node-free constructor sets
what those read (the store, the own public key), and none of them sends,
writes, or asks a node. Only the read methods named in each docstring may be called.
"""

from __future__ import annotations

from chat import tables
from chat.contacts import MIGRATIONS, Contacts
from chat.reader import ChatReader
from chat.room import RoomState
from chat.rooms import Rooms
from mesh.storage.store import Store
from mesh.wire.identity import encode_peer_id


class ContactBook(Contacts):
    """The contact list, read only: resolve, get, all, name_of, own_name_of, display_name,
    is_contact."""

    def __init__(self, store: Store, own_key: bytes) -> None:  # no node: see the module
        self.store = store
        self.own_key = own_key
        store.migrate_component("names", MIGRATIONS)  # read only: checks the version, no more

    def _known_peers(self) -> set[str]:
        return set()  # without a node, only the peers the database names


class RoomBook(Rooms):
    """The rooms, read only: resolve, state, joined, all.

    A node may be adding events meanwhile: a cached state holds only while the
    room's count of stored events stays the same (events are never deleted).
    """

    def __init__(self, store: Store) -> None:  # no node: see the module
        self.store = store
        self._states: dict[str, RoomState] = {}
        self._counted: dict[str, int] = {}

    def state(self, conv_id: str) -> RoomState:
        rows = self.store.query(
            "SELECT COUNT(*) AS n FROM room_events WHERE conv_id = ?", (conv_id,)
        )
        if self._counted.get(conv_id) != rows[0]["n"]:
            self._states.pop(conv_id, None)
            self._counted[conv_id] = rows[0]["n"]
        return super().state(conv_id)


class ChatArchive(ChatReader):
    """A home's chat, read only: the reads of :class:`chat.reader.ChatReader` (history,
    search, unread, ...), and the `contacts` and `rooms` above. It is no running chat
    (:class:`chat.messages.Chat`): reading needs neither the node nor its imports."""

    def __init__(self, store: Store, own_key: bytes) -> None:  # no node: see the module
        self.store = store
        store.migrate_component("chat", tables.MIGRATIONS)  # read only: checks the version
        self.me = encode_peer_id(own_key)
        self.contacts = ContactBook(store, own_key)
        self.rooms = RoomBook(store)
