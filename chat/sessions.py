"""Pairwise sessions: X3DH, then a Double Ratchet (chat/ratchet.py), kept in the database.

Everything two peers send each other privately goes through a session: direct
messages, every key share (room sender keys in CHAT envelopes) and every control
message (invites, membership events, document keys). A session message is

    0xC1 'R' '1' || msgpack [sid, init, header, ciphertext]

- ``sid``: 16 bytes, BLAKE2b of the initiator's ephemeral key: which session;
- ``init``: ``[ephemeral_key, prekey_id]`` while the initiator has heard nothing on
  the session yet (so any of its first messages starts the session, whichever
  arrives first), then nil; ``prekey_id`` 0 means the responder's identity key stood
  in for a signed prekey it had not published to us;
- ``header``: ``[ratchet_key, previous_chain_length, n]``;
- ``ciphertext``: the padded plaintext (chat/padding.py), AEAD-sealed with the
  associated data ``IK_initiator || IK_responder || header``.

Signed prekeys: each peer draws one every PREKEY_ROTATION (7 days) and publishes
it in its signed address record; a prekey's secret is erased PREKEY_KEPT (21 days)
after it was drawn, so a first message is forward secret from then on at the latest.

Per peer at most MAX_SESSIONS sessions are kept: two peers that start one at the
same time each keep both, and send on the one they last heard on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import msgpack

from chat.padding import pad, unpad
from chat.ratchet import (
    Ratchet,
    Rng,
    check_header,
    keypair,
    pack,
    x3dh_initiator,
    x3dh_responder,
)
from chat.ratchet import peer_x25519 as _x25519
from mesh.errors import ChatError
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope
from mesh.wire.identity import Identity, encode_peer_id

MAGIC = b"\xc1R1"
PREKEY_ROTATION = 7 * 86400.0
PREKEY_KEPT = 21 * 86400.0
MAX_SESSIONS = 4


def is_session_message(data: bytes) -> bool:
    return data[:3] == MAGIC


def _sid(ephemeral: bytes) -> bytes:
    return hashlib.blake2b(ephemeral, digest_size=16).digest()


def announced_prekey(envelope: Envelope) -> tuple[int, bytes] | None:
    """The signed prekey ``(key_id, public)`` a peer published in its address record, if
    the record holds one of that shape."""
    try:
        record = msgpack.unpackb(envelope.payload)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    value = record.get("pk") if isinstance(record, dict) else None
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and 0 < value[0] < 2**31
        and isinstance(value[1], bytes)
        and len(value[1]) == 32
    ):
        return value[0], value[1]
    return None


class Sessions:
    """The pairwise sessions of one identity, read and written in the caller's transactions."""

    def __init__(
        self,
        store: Store,
        identity: Identity,
        rng: Rng = os.urandom,
        counters: dict[str, int] | None = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self.rng = rng
        #: session_started(_without_prekey), session_accepted: the chat layer's counters
        self.counters = {} if counters is None else counters
        #: inside :meth:`batch`: (peer id, sid) -> (ratchet, initiator, last_in) opened so far
        self._held: dict[tuple[str, bytes], tuple[Ratchet, bool, float]] | None = None
        #: ratchet states read from and written to the store (what :meth:`batch` saves)
        self.loads = 0
        self.saves = 0

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Open many messages with each session read once and written once (at the end,
        inside the caller's transaction): a burst of key shares from one peer otherwise
        reads and rewrites its ratchet for every message.

        Only :meth:`open` may use the sessions meanwhile. A message that opened moves its
        session on even if the caller then rolls its own savepoint back: it was authentic,
        and its key is spent either way."""
        self._held = {}
        try:
            yield
            for (peer_id, sid), (ratchet, _, last_in) in self._held.items():
                self._write_back(peer_id, sid, ratchet, last_in)
        finally:
            self._held = None

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # -- prekeys ---------------------------------------------------------------------------

    def own_prekey(self, now: float) -> tuple[int, bytes]:
        """Our current signed prekey ``(key_id, public)``: drawn anew when due; the
        secrets of old ones erased."""
        with self.store.atomic():
            rows = self.store.query(
                "SELECT key_id, public, created FROM prekeys ORDER BY key_id DESC LIMIT 1"
            )
            if rows and now - float(rows[0]["created"]) < PREKEY_ROTATION:
                return int(rows[0]["key_id"]), bytes(rows[0]["public"])
            key_id = int(rows[0]["key_id"]) + 1 if rows else 1
            private, public = keypair(self.rng)
            self.store.execute(
                "INSERT INTO prekeys (key_id, private, public, created) VALUES (?, ?, ?, ?)",
                (key_id, private, public, now),
            )
            # erased, not only unlinked: the store runs with secure_delete on
            self.store.execute(
                "DELETE FROM prekeys WHERE created < ? AND key_id != ?", (now - PREKEY_KEPT, key_id)
            )
            return key_id, public

    def learn_prekey(self, peer: bytes, prekey: tuple[int, bytes], ts_ms: int) -> None:
        """Keep the prekey a peer published (the newest record wins)."""
        self.store.execute(
            "INSERT INTO peer_prekeys (peer_id, key_id, public, ts_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (peer_id) DO UPDATE SET key_id = excluded.key_id,"
            " public = excluded.public, ts_ms = excluded.ts_ms WHERE excluded.ts_ms > ts_ms",
            (encode_peer_id(peer), prekey[0], prekey[1], ts_ms),
        )

    def _prekey_secret(self, key_id: int) -> tuple[bytes, bytes]:
        if key_id == 0:
            return self.identity.x25519_private_key, self.identity.x25519_public_key
        rows = self.store.query("SELECT private, public FROM prekeys WHERE key_id = ?", (key_id,))
        if not rows or rows[0]["private"] is None:
            raise ChatError("a session started on a prekey erased already", reason="prekey_unknown")
        return bytes(rows[0]["private"]), bytes(rows[0]["public"])

    # -- sealing ---------------------------------------------------------------------------

    def seal(self, peer: bytes, plaintext: bytes, now: float) -> bytes:
        """Pad and encrypt `plaintext` for `peer` on our session with it (started if none)."""
        peer_id = encode_peer_id(peer)
        rows = self.store.query(
            "SELECT sid, state, initiator, init FROM ratchet_sessions WHERE peer_id = ?"
            " ORDER BY last_in IS NULL, last_in DESC, initiator DESC, created DESC LIMIT 1",
            (peer_id,),
        )
        row = rows[0] if rows else None
        if row is None:
            sid, ratchet, init, initiator = self._start(peer, now)
        else:
            sid, ratchet = bytes(row["sid"]), Ratchet.load(bytes(row["state"]))
            init, initiator = row["init"], bool(row["initiator"])
        header, ciphertext = ratchet.encrypt(pad(plaintext), self._ad(peer, initiator))
        self._save(peer_id, sid, ratchet)
        init_field = msgpack.unpackb(init) if init is not None else None
        return MAGIC + pack([sid, init_field, list(header), ciphertext])

    def _start(self, peer: bytes, now: float) -> tuple[bytes, Ratchet, bytes, bool]:
        """A new session with `peer`, as its initiator (X3DH)."""
        peer_id = encode_peer_id(peer)
        rows = self.store.query(
            "SELECT key_id, public FROM peer_prekeys WHERE peer_id = ?", (peer_id,)
        )
        peer_ik = _x25519(peer)
        if rows:
            key_id, spk = int(rows[0]["key_id"]), bytes(rows[0]["public"])
        else:
            key_id, spk = 0, peer_ik
            self._count("session_started_without_prekey")
        ek_private, ek_public = keypair(self.rng)
        shared = x3dh_initiator(self.identity.x25519_private_key, ek_private, peer_ik, spk)
        ratchet = Ratchet.initiator(shared, spk, self.rng)
        sid = _sid(ek_public)
        init = msgpack.packb([ek_public, key_id])
        self.store.execute(
            "INSERT INTO ratchet_sessions (peer_id, sid, state, initiator, init, created)"
            " VALUES (?, ?, ?, 1, ?, ?)",
            (peer_id, sid, ratchet.dump(), init, now),
        )
        self._prune(peer_id)
        self._count("session_started")
        return sid, ratchet, init, True

    def _save(self, peer_id: str, sid: bytes, ratchet: Ratchet) -> None:
        self.store.execute(
            "UPDATE ratchet_sessions SET state = ? WHERE peer_id = ? AND sid = ?",
            (ratchet.dump(), peer_id, sid),
        )

    def _prune(self, peer_id: str) -> None:
        self.store.execute(
            "DELETE FROM ratchet_sessions WHERE peer_id = ? AND sid NOT IN (SELECT sid FROM"
            " ratchet_sessions WHERE peer_id = ? ORDER BY COALESCE(last_in, created) DESC"
            " LIMIT ?)",
            (peer_id, peer_id, MAX_SESSIONS),
        )

    def _ad(self, peer: bytes, initiator: bool) -> bytes:
        me = self.identity.public_key
        return me + peer if initiator else peer + me

    # -- opening ---------------------------------------------------------------------------

    def open(self, peer: bytes, data: bytes, now: float) -> bytes:
        """Open a session message from `peer`. Raises ChatError: ``malformed``, ``tampered``,
        ``ratchet_used`` (opened before: a duplicate), ``ratchet_skip``, ``no_session``,
        ``prekey_unknown``, ``bad_padding``."""
        try:
            sid, init, raw_header, ciphertext = msgpack.unpackb(data[len(MAGIC) :])
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ChatError("malformed session message", reason="malformed") from exc
        if not (isinstance(sid, bytes) and len(sid) == 16 and isinstance(ciphertext, bytes)):
            raise ChatError("malformed session message", reason="malformed")
        header = check_header(raw_header)
        peer_id = encode_peer_id(peer)
        held = None if self._held is None else self._held.get((peer_id, sid))
        if held is not None:
            ratchet, initiator, known = held[0], held[1], True
        else:
            rows = self.store.query(
                "SELECT state, initiator FROM ratchet_sessions WHERE peer_id = ? AND sid = ?",
                (peer_id, sid),
            )
            known = bool(rows)
            if rows:
                ratchet = Ratchet.load(bytes(rows[0]["state"]))
                initiator = bool(rows[0]["initiator"])
                self.loads += 1
            else:
                ratchet, initiator = self._respond(peer, sid, init), False
        plaintext = ratchet.decrypt(header, ciphertext, self._ad(peer, initiator), self.rng)
        if known and self._held is not None:
            self._held[(peer_id, sid)] = (ratchet, initiator, now)
        elif known:
            self._write_back(peer_id, sid, ratchet, now)
        else:
            self.store.execute(
                "INSERT INTO ratchet_sessions (peer_id, sid, state, initiator, created, last_in)"
                " VALUES (?, ?, ?, 0, ?, ?)",
                (peer_id, sid, ratchet.dump(), now, now),
            )
            self._prune(peer_id)
            self._count("session_accepted")
        return unpad(plaintext)

    def _write_back(self, peer_id: str, sid: bytes, ratchet: Ratchet, last_in: float) -> None:
        self.saves += 1
        self.store.execute(
            "UPDATE ratchet_sessions SET state = ?, last_in = ?, init = NULL"
            " WHERE peer_id = ? AND sid = ?",
            (ratchet.dump(), last_in, peer_id, sid),
        )

    def _respond(self, peer: bytes, sid: bytes, init: Any) -> Ratchet:
        """The responder's side of a session `peer` started (X3DH from its init)."""
        if init is None:
            raise ChatError("a message on a session this peer does not hold", reason="no_session")
        if not (
            isinstance(init, list)
            and len(init) == 2
            and isinstance(init[0], bytes)
            and len(init[0]) == 32
            and isinstance(init[1], int)
            and 0 <= init[1] < 2**31
        ):
            raise ChatError("malformed session start", reason="malformed")
        ephemeral, key_id = init
        if _sid(ephemeral) != sid:
            raise ChatError("a session start whose id does not match", reason="malformed")
        spk = self._prekey_secret(key_id)
        shared = x3dh_responder(self.identity.x25519_private_key, spk[0], _x25519(peer), ephemeral)
        return Ratchet.responder(shared, spk)

    def status(self) -> dict[str, Any]:
        rows = self.store.query("SELECT COUNT(*) AS n FROM ratchet_sessions")
        return {"sessions": int(rows[0]["n"])}
