"""Taking in CHAT envelopes: opened, checked and stored a burst at a time.

A member back after days gets thousands of messages in a few seconds. Each one
taken alone costs a transaction, a lookup of its author, and a signed receipt;
:class:`Inbox` takes the envelopes that arrived together in one transaction (a
savepoint each, so one bad envelope spoils none of the others) and says, for
each, whether to receipt it, so that the caller sends one receipt per author
for the whole burst, after the commit (a message is acknowledged only once it
is stored).

A burst is taken optimistically first: a message refused before it wrote
anything (nearly every refusal) needs no savepoint to leave no trace, so none
is taken, and the burst's new messages are inserted together
(:meth:`chat.timeline.Timeline.stage`). Should a refused message have written
something (a skipped key kept, say), the burst is undone whole and taken again
with a savepoint per message (``redone`` counts it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgpack

from chat.contacts import Contacts
from chat.content import Content
from chat.keystore import KeyStore
from chat.pairwise import Pairwise
from chat.pending import Pending
from chat.reader import dm_conversation_id
from chat.room import RoomState
from chat.rooms import Rooms
from chat.senderkey import associated_data, open_sealed
from chat.sessions import is_session_message
from chat.timeline import Stored, Timeline
from mesh.errors import ChatError, MeshError
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope
from mesh.wire.identity import Identity, encode_peer_id

log = logging.getLogger("meshnotes.chat")

#: indexes one duplicate check names at most (SQLite's limit on parameters is 32,766)
PAGE = 500

#: why a message's key share may fail to open while its chain is known from another
#: message's share (then the message is read without it, or waits for it)
SHARE_NOT_NEEDED = frozenset({"ratchet_skip", "no_session", "prekey_unknown"})


@dataclass(frozen=True)
class Taken:
    """One stored content of a burst: what the caller tells listeners about."""

    conv_id: str
    author_id: str
    content: Content
    stored: Stored


@dataclass
class Burst:
    """What taking in a burst of CHAT envelopes did."""

    #: the contents stored, in arrival order
    taken: list[Taken] = field(default_factory=list)
    #: (author, flood) -> the envelope ids to receipt to that author
    receipts: dict[tuple[bytes, bool], list[bytes]] = field(default_factory=dict)
    #: counter name -> how many envelopes it counts
    counts: dict[str, int] = field(default_factory=dict)
    #: transactions committed for the burst (one, unless the store failed)
    transactions: int = 0

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1


class _Redo(Exception):
    """A message refused after it wrote to the store: take the burst again, carefully."""


#: a CHAT payload's fields (:func:`_payload`), or why they are refused
Fields = tuple[bytes, int, int, bytes, bytes | None] | ChatError


class Inbox:
    """Opens and stores CHAT envelopes for one node (the chat layer's receiving half)."""

    def __init__(
        self,
        store: Store,
        identity: Identity,
        contacts: Contacts,
        rooms: Rooms,
        pairwise: Pairwise,
        keys: KeyStore,
        timeline: Timeline,
        pending: Pending,
        ensure_dm: Callable[[bytes], str],
        clock: Callable[[], float],
    ) -> None:
        """`ensure_dm(peer)`: the id of the direct conversation with `peer`, made as a
        request if new."""
        self.store = store
        self.identity = identity
        self.contacts = contacts
        self.rooms = rooms
        self.pairwise = pairwise
        self.keys = keys
        self.timeline = timeline
        self.pending = pending
        self.ensure_dm = ensure_dm
        self.clock = clock
        #: during a burst: room id -> its state (None: not here)
        self._rooms: dict[str, RoomState | None] = {}
        #: during a burst: the (conv, author, epoch, index) of its messages stored already
        self._stored: set[tuple[str, str, int, int]] = set()
        #: during a burst: the contents staged to be stored together, in arrival order
        self._staged: list[tuple[str, str, Content]] = []
        #: during a burst: peer ids by key, and direct conversation ids by author
        self._ids: dict[bytes, str] = {}
        self._dm: dict[bytes, bytes] = {}
        #: bursts taken again with a savepoint per message (a refusal wrote to the store)
        self.redone = 0

    def take(self, envelopes: Iterable[Envelope]) -> Burst:
        """Open and store `envelopes` in one transaction. A rejected envelope is counted
        (``chat_rejected_<reason>``) and neither stored nor receipted; if the commit
        fails, nothing of the burst is stored or receipted (``chat_store_error``)."""
        envelopes = list(envelopes)
        try:
            return self._take(envelopes, careful=False)
        except _Redo:
            self.redone += 1
            return self._take(envelopes, careful=True)

    def _take(self, envelopes: list[Envelope], careful: bool) -> Burst:
        """One try at a burst: `careful`, each message in a savepoint of its own; else
        none, and :class:`_Redo` raised if a message refused had written something."""
        burst = Burst()
        blocked: dict[bytes, bool] = {}
        self._rooms = {}  # no CHAT envelope changes a room: read each once per burst
        self._staged = []
        try:
            with (
                self.store.atomic(),
                self.pairwise.sessions.batch(),
                self.keys.batch(),
                self.timeline.batch(),
            ):
                fields = [_fields(envelope.payload) for envelope in envelopes]
                self._stored = self._stored_before(envelopes, fields)
                for envelope, got in zip(envelopes, fields, strict=True):
                    self._take_one(envelope, got, burst, blocked, careful)
                self._store_staged(burst)
        except MeshError as exc:
            log.warning("%d chat messages not stored: %s", len(envelopes), exc)
            return Burst(counts={"chat_store_error": len(envelopes)})
        finally:
            self._ids = {}
            self._dm = {}
        burst.transactions = 1
        return burst

    def _peer_id(self, key: bytes) -> str:
        peer_id = self._ids.get(key)
        if peer_id is None:
            peer_id = self._ids[key] = encode_peer_id(key)
        return peer_id

    def _take_one(
        self,
        envelope: Envelope,
        fields: Fields,
        burst: Burst,
        blocked: dict[bytes, bool],
        careful: bool,
    ) -> None:
        author = envelope.author
        if author not in blocked:
            blocked[author] = self.contacts.is_blocked(self._peer_id(author))
        try:
            if blocked[author]:
                raise ChatError("the sender is blocked", reason="blocked")
            if isinstance(fields, ChatError):
                raise fields
            if careful:
                # a savepoint: a rejected envelope leaves no trace
                with self.store.atomic(), self.keys.savepoint():
                    receipt = self._receive(envelope, fields, burst)
            else:
                before, kept = self.store.changes(), self.keys.mark()
                try:
                    receipt = self._receive(envelope, fields, burst)
                except ChatError:
                    self.keys.restore(kept)
                    if self.store.changes() != before:
                        raise _Redo from None
                    raise
        except ChatError as exc:
            burst.count(f"chat_rejected_{exc.reason}")
            log.info("chat message rejected from %s: %s", self._peer_id(author), exc)
            return
        if receipt:
            burst.receipts.setdefault((author, envelope.flood), []).append(envelope.message_id)

    def _receive(
        self, envelope: Envelope, fields: tuple[bytes, int, int, bytes, bytes | None], burst: Burst
    ) -> bool:
        """Decrypt and store one CHAT envelope; return whether to receipt it.

        A message whose key or room is not known yet waits in `pending`
        (bounded) and is tried again when the room changes.
        """
        conv, epoch, index, sealed, share = fields
        author = envelope.author
        author_id = self._peer_id(author)
        conv_id = self._peer_id(conv)
        where = (conv_id, author_id, epoch, index)
        if where in self._stored:
            burst.count("chat_duplicate")
            return True  # receipt again: the first receipt may have been lost
        now = self.clock()
        dm = self._dm.get(author)
        if dm is None:
            dm = self._dm[author] = dm_conversation_id(self.identity.public_key, author)
        is_dm = conv == dm
        if not is_dm:
            state = self._room(conv_id)
            if state is None or author not in state.members:
                if state is not None and author in state.departed:
                    raise ChatError("sender is not a member of the room", reason="not_member")
                self.pending.hold(envelope, conv_id, now)
                return False
            if self.identity.public_key not in state.members:
                raise ChatError("not a member of the room", reason="not_member")
        if is_dm:
            conv_id = self.ensure_dm(author)
        if is_dm and is_session_message(sealed):
            opened = self.pairwise.open(author, sealed, now)
            if opened is None:  # opened before, under another index: a replay
                raise ChatError("a direct message opened before", reason="replayed")
        else:
            try:
                shared = self.pairwise.open_share(author, share, conv, epoch, index, now)
            except ChatError as exc:
                if exc.reason not in SHARE_NOT_NEEDED:
                    raise
                # the session cannot open it now (too far ahead of what arrived, say):
                # the chain may be known from another message's share; else it waits
                burst.count(f"chat_share_unopened_{exc.reason}")
                shared = None
            key = self.keys.message_key(conv_id, epoch, author_id, index, shared)
            if key is None:
                self.pending.hold(envelope, conv_id, now)
                return False
            opened = open_sealed(key, sealed, associated_data(conv, epoch, index, author))
        try:
            body = msgpack.unpackb(opened)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            # authentic (the author holds the key) but not what a chat client writes
            raise ChatError("malformed chat content", reason="malformed") from exc
        content = Content.decode(body)
        self._stored.add(where)
        self.pending.forget(envelope)
        if self.timeline.can_stage(content):
            self.timeline.stage(conv_id, author_id, content, "received", now, epoch, index)
            self._staged.append((conv_id, author_id, content))
            return True
        self._store_staged(burst)  # in arrival order: it may change one of them
        stored = self.timeline.add(conv_id, author_id, content, "received", now, epoch, index)
        self._taken(burst, conv_id, author_id, content, stored)
        return True

    def _store_staged(self, burst: Burst) -> None:
        """Store the contents staged so far, together."""
        staged, self._staged = self._staged, []
        for (conv_id, author_id, content), stored in zip(
            staged, self.timeline.store_staged(), strict=True
        ):
            self._taken(burst, conv_id, author_id, content, stored)

    def _taken(
        self, burst: Burst, conv_id: str, author_id: str, content: Content, stored: Stored
    ) -> None:
        burst.count("chat_received" if stored.added else "chat_duplicate")
        burst.taken.append(Taken(conv_id, author_id, content, stored))

    def _stored_before(
        self, envelopes: list[Envelope], fields: list[Fields]
    ) -> set[tuple[str, str, int, int]]:
        """Which of the burst's messages are stored already: one query per author's chain
        (a page of indexes at a time), not one per message. A duplicate is receipted
        again without being opened (its key is used up)."""
        chains: dict[tuple[str, str, int], set[int]] = {}
        for envelope, got in zip(envelopes, fields, strict=True):
            if isinstance(got, ChatError):
                continue  # refused when its turn comes
            conv, epoch, index, _, _ = got
            key = (self._peer_id(conv), self._peer_id(envelope.author), epoch)
            chains.setdefault(key, set()).add(index)
        stored: set[tuple[str, str, int, int]] = set()
        for (conv_id, author_id, epoch), indexes in chains.items():
            wanted = sorted(indexes)
            for start in range(0, len(wanted), PAGE):
                page = wanted[start : start + PAGE]
                rows = self.store.query(
                    "SELECT idx FROM messages WHERE conv_id = ? AND author = ? AND epoch = ?"
                    f" AND idx IN ({','.join('?' * len(page))})",
                    (conv_id, author_id, epoch, *page),
                )
                stored.update((conv_id, author_id, epoch, int(row["idx"])) for row in rows)
        return stored

    def _room(self, conv_id: str) -> RoomState | None:
        """Who is in a room (None: no such room here), read once per burst: the rooms
        cache a state only outside transactions, and folding one checks every event's
        signature."""
        if conv_id not in self._rooms:
            here = self.rooms.conversation(conv_id) is not None
            self._rooms[conv_id] = self.rooms.state(conv_id) if here else None
        return self._rooms[conv_id]


def _fields(payload: bytes) -> Fields:
    """A CHAT payload's fields, or the error that refuses it (when its turn comes)."""
    try:
        return _payload(payload)
    except ChatError as exc:
        return exc


def _payload(payload: bytes) -> tuple[bytes, int, int, bytes, bytes | None]:
    """A CHAT payload's fields, checked: [conv_id, epoch, index, sealed, share or None]."""
    try:
        conv, epoch, index, sealed, share = msgpack.unpackb(payload)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ChatError("malformed chat payload", reason="malformed") from exc
    if not (
        isinstance(conv, bytes)
        and len(conv) == 32
        and isinstance(epoch, int)
        and isinstance(index, int)
        and 0 <= epoch < 2**32
        and 0 <= index < 2**32
        and isinstance(sealed, bytes)
        and (share is None or isinstance(share, bytes))
    ):
        raise ChatError("malformed chat payload", reason="malformed")
    return conv, epoch, index, sealed, share
