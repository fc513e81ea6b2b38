"""Ephemeral signals between people: sealed end to end like messages, never kept anywhere.

Typing notices and collaborators' cursors (crdt/awareness.py) travel as SIGNAL
envelopes (mesh/routing/signals.py: relays pass them on within a per-author
budget and keep nothing). This module seals and opens them:

- to a room: ``[room_id, epoch, secretbox]`` where the box's key is derived
  from the room's document key of that epoch, ``BLAKE2b(key=document key,
  person="meshnotes-signal")``, so that only the epoch's members open it;
- to a peer: sealed on the pair's ratchet session (chat/pairwise.py, chat/sessions.py).

Both are padded to a size bucket first (chat/padding.py), as every sealed payload.

Inside, msgpack ``[kind, ts_ms, body]``: what the signal is ("typing",
"awareness", ...), when it was made, and a map. A signal older than
`MAX_AGE` seconds when it arrives, from someone not in the room (or a
blocked peer), or that does not open, is dropped and counted
(``signals_dropped_<reason>``). Handlers registered per kind get
``(conv_id, author, body)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgpack
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.secret
import nacl.utils

from chat.messages import Chat, dm_conversation_id
from chat.padding import pad, unpad
from mesh.errors import ChatError
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

log = logging.getLogger("meshnotes.chat")

#: a signal this old when it arrives (seconds) says nothing true any more
MAX_AGE = 30.0
#: how far signals travel (hops): they matter to people a few links away, not the whole mesh
HOP_LIMIT = 8

SignalHandler = Callable[[str, bytes, dict[str, Any]], None]


def _room_key(document_key: bytes) -> bytes:
    return nacl.hash.blake2b(
        b"", key=document_key, person=b"meshnotes-signal", encoder=nacl.encoding.RawEncoder
    )


class Signals:
    """Sends and receives one node's signals; the layers above register a handler per kind."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.node = chat.node
        self.handlers: dict[str, SignalHandler] = {}
        self.counters = chat.counters
        self.node.on_deliver(EnvelopeType.SIGNAL, self._receive)

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def _plaintext(self, kind: str, body: dict[str, Any]) -> bytes:
        ts_ms = int(self.node.clock() * 1000)
        return bytes(msgpack.packb([kind, ts_ms, body], use_bin_type=True))

    def to_room(self, room_id: str, kind: str, body: dict[str, Any]) -> bool:
        """Send a signal to a room's members now; False (nothing sent) where this peer is not
        a member holding the room's current key."""
        state = self.chat.rooms.state(room_id)
        if self.node.identity.public_key not in state.members:
            return False
        key = self.chat.rooms.document_key(room_id, state.epoch)
        if key is None:
            return False
        plaintext = pad(self._plaintext(kind, body))  # a relay learns a bucket, not a length
        box = nacl.secret.SecretBox(_room_key(key)).encrypt(plaintext)
        room = decode_peer_id(room_id)
        payload = msgpack.packb([room, state.epoch, bytes(box)], use_bin_type=True)
        return self._send(DestKind.ROOM, room, payload)

    def to_peer(self, peer: bytes, kind: str, body: dict[str, Any]) -> bool:
        """Send a signal to one peer, if a path to it is known now (else nothing: it would be
        stale by the time one is)."""
        now = self.node.clock()
        if self.node.router.route_to(peer, now) is None:
            return False
        with self.chat.store.atomic():  # forward secret like a direct message
            payload = self.chat.pairwise.seal(peer, self._plaintext(kind, body), now)
        return self._send(DestKind.PEER, peer, payload)

    def _send(self, dest_kind: DestKind, dest: bytes, payload: bytes) -> bool:
        envelope = self.node.router.make(
            EnvelopeType.SIGNAL,
            self.node.clock(),
            dest_kind=dest_kind,
            dest=dest,
            payload=payload,
            hop_limit=HOP_LIMIT,
        )
        self.node.send(envelope)
        self._count("signals_sent")
        return True

    # -- receiving -----------------------------------------------------------------

    def _receive(self, envelope: Envelope) -> None:
        try:
            conv_id, kind, body = self._open(envelope)
        except ChatError as exc:
            self._count(f"signals_dropped_{exc.reason}")
            return
        handler = self.handlers.get(kind)
        if handler is None:
            self._count("signals_dropped_unknown_kind")
            return
        self._count("signals_received")
        handler(conv_id, envelope.author, body)

    def _open(self, envelope: Envelope) -> tuple[str, str, dict[str, Any]]:
        """(conversation id, kind, body) of a signal for us; ChatError (with a reason) if not."""
        author = envelope.author
        if self.chat.contacts.is_blocked(encode_peer_id(author)):
            raise ChatError("a signal from a blocked peer", reason="blocked")
        if envelope.dest_kind == DestKind.ROOM:
            room_id = encode_peer_id(envelope.dest)
            try:
                room, epoch, box = msgpack.unpackb(envelope.payload, raw=False)
                if room != envelope.dest or not isinstance(epoch, int):
                    raise ValueError("the room it names is not its envelope's")
                if not isinstance(box, bytes):  # bytes(n) of a number would allocate n bytes
                    raise ValueError("its box is not bytes")
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise ChatError(f"a malformed room signal: {exc}", reason="malformed") from exc
            members = self.chat.rooms.state(room_id).members
            if self.node.identity.public_key not in members:
                raise ChatError("a signal for a room this peer only relays", reason="not_ours")
            if author not in members:
                raise ChatError("a signal from outside the room", reason="not_member")
            key = self.chat.rooms.document_key(room_id, epoch)
            if key is None:
                raise ChatError("a signal sealed with a key not held here", reason="no_key")
            try:
                plaintext = nacl.secret.SecretBox(_room_key(key)).decrypt(bytes(box))
            except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
                raise ChatError("a room signal failed to open", reason="bad_box") from exc
            plaintext = unpad(plaintext)  # ChatError (bad_padding) if it is not padded right
            conv_id = room_id
        else:
            conv_id = encode_peer_id(dm_conversation_id(self.node.identity.public_key, author))
            known = self.chat.conversation(conv_id) is not None
            if not known and not self.chat.contacts.is_contact(encode_peer_id(author)):
                # a stranger's signal costs us nothing: no row, no state
                raise ChatError("a signal from a stranger", reason="stranger")
            with self.chat.store.atomic():
                opened = self.chat.pairwise.open(author, envelope.payload, self.node.clock())
            if opened is None:
                raise ChatError("a signal opened before", reason="duplicate")
            plaintext = opened
        try:
            kind, ts_ms, body = msgpack.unpackb(plaintext, raw=False)
            if (
                not isinstance(kind, str)
                or not isinstance(ts_ms, int)
                or not isinstance(body, dict)
            ):
                raise TypeError("not [kind, ts, body]")
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError(f"a malformed signal: {exc}", reason="malformed") from exc
        if abs(self.node.clock() - ts_ms / 1000) > MAX_AGE:
            raise ChatError("a signal too old (or from the future)", reason="stale")
        return conv_id, kind, body
