"""The chat's reads: conversations, history, search, unread counts, a message by its id.

:class:`ChatReader` is what both the running chat (:class:`chat.messages.Chat`)
and the node-free archive (:class:`chat.archive.ChatArchive`) answer with: it
reads the database only, through :mod:`chat.history`, :mod:`chat.search` and
:mod:`chat.unread`. Nothing from a blocked peer is shown or found.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chat import history, search, unread
from mesh.errors import PeerNameError, UsageError
from mesh.storage.store import Store
from mesh.wire.peerid import encode_peer_id

if TYPE_CHECKING:  # the rooms' module folds signed events (PyNaCl): not for a read
    from chat.contacts import Contacts
    from chat.rooms import Rooms

#: a message id as ``history`` prints it, or an unambiguous prefix of one (6 characters or more)
MESSAGE_ID = re.compile(r"[0-9a-f]{6,64}")


def dm_conversation_id(key_a: bytes, key_b: bytes) -> bytes:
    """The id both peers of a direct conversation derive, without talking."""
    import hashlib  # not at import: a read of a room's history hashes nothing

    low, high = sorted((key_a, key_b))
    return hashlib.blake2b(low + high, digest_size=32, person=b"mn-dm-v1").digest()


class ChatReader:
    """Reads of a home's chat (set `store`, `me`, `contacts` and `rooms` before use)."""

    store: Store
    me: str
    contacts: Contacts
    rooms: Rooms

    def resolve_conversation(self, name: str) -> str:
        """A room (id, prefix, name) or a peer's direct conversation (nickname, id, prefix),
        or any stored conversation by its exact id (what the UI passes)."""
        exact = self.store.query(
            "SELECT conv_id FROM conversations WHERE conv_id = ?", (name.strip().lower(),)
        )
        if exact:
            return str(exact[0]["conv_id"])
        try:
            return history.room_id(self.store, name)
        except UsageError as room_error:
            try:
                peer = self.contacts.resolve(name)
            except PeerNameError:
                raise UsageError(f"no room or peer matches {name!r}") from room_error
            return encode_peer_id(dm_conversation_id(self.contacts.own_key, peer))

    def conversations(self) -> list[dict[str, Any]]:
        """Every conversation (rooms and direct ones)."""
        return history.conversations(self.store)

    def conversation(self, conv_id: str) -> dict[str, Any] | None:
        """One conversation by its exact id (as in :meth:`conversations`), or None."""
        return history.conversation(self.store, conv_id)

    def history(
        self,
        conversation: str,
        limit: int = 50,
        around: str | None = None,
        before: str | None = None,
    ) -> list[dict[str, Any]]:
        """The last `limit` messages of a room or direct conversation, oldest first; with
        `around` (a message id), the `limit` messages about it instead; with `before`, the
        `limit` just before it (none when it is not there)."""
        if not 1 <= limit <= 10_000:
            raise UsageError("--limit must be between 1 and 10000")
        conv_id = self.resolve_conversation(conversation)
        if before is not None:
            messages = history.messages_before(self.store, conv_id, before, limit, self.me)
        elif around is None:
            messages = history.last_messages(self.store, conv_id, limit, self.me)
        else:
            messages = history.messages_around(self.store, conv_id, around, limit, self.me)
        return self._named(messages)

    def _named(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        blocked = self.contacts.blocked()
        if blocked:  # nothing from a blocked key is shown
            messages = [m for m in messages if m["author"] not in blocked]
        for m in messages:
            m["author_name"] = self.contacts.display_name(m["author"])
        return messages

    def search(
        self, query: str, conversation: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """[{id, conv, author, text, ts}] matching `query`, best first (:mod:`chat.search`)."""
        conv_id = None if conversation is None else self.resolve_conversation(conversation)
        found = search.search(self.store, query, conv_id, limit)
        blocked = self.contacts.blocked()
        return [r for r in found if r["author"] not in blocked]

    def unread(self) -> list[dict[str, Any]]:
        """[{conv, unread, mentions}] for each conversation with unread messages."""
        return [
            {"conv": conv_id, **counts}
            for conv_id, counts in sorted(unread.counts(self.store).items())
        ]

    def message(self, msg_id: str) -> dict[str, Any]:
        """A shown message by its id or an unambiguous prefix (6 characters or more)."""
        text = msg_id.strip().lower()
        if not MESSAGE_ID.fullmatch(text):
            raise UsageError(f"not a message id: {msg_id!r} (history --json shows them)")
        rows = self.store.query(
            f"SELECT * FROM messages WHERE msg_id GLOB ? AND {history.SHOWN} LIMIT 2",
            (text + "*",),
        )
        if not rows or rows[0]["author"] in self.contacts.blocked():
            raise UsageError(f"no message {msg_id!r} here")
        if len(rows) > 1:
            raise UsageError(f"{msg_id!r} names more than one message; give more of the id")
        return self._named(history.views(self.store, rows, self.me))[0]
