"""Reads without a node: the read verbs answered from the home's database when no node runs.

``history``, ``search``, ``unread``, ``contacts``, ``room list`` and
``note list|cat|export|history`` ask the running node when its control socket
answers; when none runs they read the database directly, read-only (the node
may start and write meanwhile: SQLite's
WAL lets both go on), through the chat and notes layers' own read code
(:mod:`chat.archive`, :mod:`crdt.notebook`), so the output is the same. An
encrypted database needs the home's passphrase (--passphrase-file,
$MESHNOTES_PASSPHRASE, or asked on a terminal: :mod:`tui.passphrase`), asked
once per command; a plain one needs none. Otherwise only the public half of the
identity is read (for safety numbers and to check the notes' signed checkpoints).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chat.archive import ChatArchive
from mesh.errors import NodeNotRunningError
from mesh.wire.peerid import decode_peer_id
from tui.passphrase import store_key
from tui.verbs import client

if TYPE_CHECKING:
    from crdt.notebook import NoteBook
    from mesh.runtime.home import Home

T = TypeVar("T")


class Reader(Protocol):
    """The read verbs, as the control client (:class:`crdt.client.Client`) has them."""

    def history(self, conversation: str, limit: int = 50) -> list[dict[str, Any]]: ...

    def search(
        self, query: str, conversation: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]: ...

    def unread(self) -> list[dict[str, Any]]: ...

    def contacts_list(self) -> list[dict[str, Any]]: ...

    def room_list(self) -> list[dict[str, Any]]: ...

    def note_list(self, room: str | None = None, deleted: bool = False) -> list[dict[str, Any]]: ...

    def note_cat(self, note: str) -> dict[str, Any]: ...

    def note_export(self, note: str) -> dict[str, Any]: ...

    def note_history(self, note: str) -> dict[str, Any]: ...

    def note_version(self, note: str, version: int) -> dict[str, Any]: ...


class OfflineReader:
    """The read verbs answered from a home's database, opened read-only for each call."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self._key: bytes | None = None
        self._unlocked = False

    @contextlib.contextmanager
    def _opened(self) -> Iterator[ChatArchive]:
        own_key = decode_peer_id(self.home.public_info()[0])
        if not self._unlocked:  # one passphrase (one argon2id run) per command
            self._key, self._unlocked = store_key(self.home), True
        store = self.home.open_store_readonly(self._key)
        try:
            yield ChatArchive(store, own_key)
        finally:
            store.close()

    @contextlib.contextmanager
    def _notes(self) -> Iterator[NoteBook]:
        # the notes layer (pycrdt) only for the notes' verbs: the chat's reads start faster
        from crdt.notebook import NoteBook

        with self._opened() as chat:
            yield NoteBook(chat, chat.store)

    def history(self, conversation: str, limit: int = 50) -> list[dict[str, Any]]:
        with self._opened() as chat:
            return chat.history(conversation, limit)

    def search(
        self, query: str, conversation: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        with self._opened() as chat:
            return chat.search(query, conversation, limit)

    def unread(self) -> list[dict[str, Any]]:
        with self._opened() as chat:
            return chat.unread()

    def contacts_list(self) -> list[dict[str, Any]]:
        from chat.presence import last_seen  # asyncio and the node: only for this verb

        with self._opened() as chat:  # no node: nobody is online as far as it knows
            return [
                {**c, "online": False, "last_seen": last_seen(chat.store, c["peer_id"])}
                for c in chat.contacts.all()
            ]

    def room_list(self) -> list[dict[str, Any]]:
        with self._opened() as chat:
            return chat.rooms.all()

    def note_list(self, room: str | None = None, deleted: bool = False) -> list[dict[str, Any]]:
        with self._notes() as notes:
            return notes.all(room, deleted)

    def note_cat(self, note: str) -> dict[str, Any]:
        with self._notes() as notes:
            note_id = notes.resolve(note)
            return {"note_id": note_id, "text": notes.cat(note_id)}

    def note_export(self, note: str) -> dict[str, Any]:
        return self.note_cat(note)

    def note_history(self, note: str) -> dict[str, Any]:
        from crdt.service import note_history

        with self._notes() as notes:
            return note_history(notes, note)

    def note_version(self, note: str, version: int) -> dict[str, Any]:
        from crdt.service import note_version

        with self._notes() as notes:
            return note_version(notes, note, version)


class NodeOrDatabase:
    """Each read verb asked of the home's running node, or, when none answers, of its
    database (:class:`OfflineReader`)."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.database = OfflineReader(home)

    def _either(self, verb: Callable[[Reader], T]) -> T:
        # no control socket, no node: then the control client is not even imported
        if self.home.control_socket.exists():
            try:
                return verb(client(self.home))
            except NodeNotRunningError:
                pass
        return verb(self.database)

    def history(self, conversation: str, limit: int = 50) -> list[dict[str, Any]]:
        return self._either(lambda r: r.history(conversation, limit))

    def search(
        self, query: str, conversation: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        return self._either(lambda r: r.search(query, conversation, limit))

    def unread(self) -> list[dict[str, Any]]:
        return self._either(lambda r: r.unread())

    def contacts_list(self) -> list[dict[str, Any]]:
        return self._either(lambda r: r.contacts_list())

    def room_list(self) -> list[dict[str, Any]]:
        return self._either(lambda r: r.room_list())

    def note_list(self, room: str | None = None, deleted: bool = False) -> list[dict[str, Any]]:
        return self._either(lambda r: r.note_list(room, deleted))

    def note_cat(self, note: str) -> dict[str, Any]:
        return self._either(lambda r: r.note_cat(note))

    def note_export(self, note: str) -> dict[str, Any]:
        return self._either(lambda r: r.note_export(note))

    def note_history(self, note: str) -> dict[str, Any]:
        return self._either(lambda r: r.note_history(note))

    def note_version(self, note: str, version: int) -> dict[str, Any]:
        return self._either(lambda r: r.note_version(note, version))


def reader(home: Home) -> Reader:
    """The read verbs for `home`: its running node's, else its database's."""
    return NodeOrDatabase(home)
