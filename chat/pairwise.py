"""What two peers send each other privately: sealed on a ratchet session, or boxed.

Direct messages, key shares (``[conv_id, epoch, chain_key, index]``,
:meth:`Pairwise.open_share`) and control messages are sealed on the pair's
Double Ratchet session (:mod:`chat.sessions`): forward secret and self-healing.
Signals (typing, read marks) and what older nodes sent are crypto_box between the
two static X25519 keys (:func:`box`); such boxes still open, counted.

What is boxed is padded to a size bucket first (:mod:`chat.padding`), behind one
marker byte, 0xC1: msgpack never starts with it, and every body boxed before
padding existed is msgpack, so such an older box (still in an outbox or a
mailbox) opens as it was.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.public

from chat.padding import pad, unpad
from chat.ratchet import Rng, peer_x25519
from chat.senderkey import Chain
from chat.sessions import Sessions, announced_prekey, is_session_message
from mesh.errors import ChatError, MeshError
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope
from mesh.wire.identity import Identity


def _box(identity: Identity, peer: bytes) -> nacl.public.Box:
    return nacl.public.Box(
        nacl.public.PrivateKey(identity.x25519_private_key),
        nacl.public.PublicKey(peer_x25519(peer)),
    )


#: the first byte of a padded box's plaintext ("never used" in msgpack)
PADDED = b"\xc1"
#: key shares kept sealed for reuse (one per conversation, epoch and member), and shares
#: opened remembered, at most
MAX_SHARES_KEPT = 10_000


def box(identity: Identity, peer: bytes, plaintext: bytes) -> bytes:
    """Pad, then encrypt for `peer` (its Ed25519 key): random nonce || ciphertext. What
    earlier versions sent where a session message now goes; nothing sends it any more
    (the tests make such older payloads with it)."""
    return bytes(_box(identity, peer).encrypt(PADDED + pad(plaintext)))


def unbox(identity: Identity, peer: bytes, ciphertext: bytes) -> bytes:
    """Open and unpad what `peer` boxed for us; raise ChatError if it fails (reason
    ``bad_box``) or is badly padded (``bad_padding``)."""
    try:
        plaintext = bytes(_box(identity, peer).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise ChatError("a pairwise box failed to open", reason="bad_box") from exc
    if plaintext[:1] == PADDED:
        return unpad(plaintext[1:])
    return plaintext  # boxed before padding existed


class Pairwise:
    """Seal for one peer and open what one peer sealed, in the caller's transactions."""

    def __init__(
        self, store: Store, identity: Identity, rng: Rng, counters: dict[str, int]
    ) -> None:
        self.identity = identity
        self.sessions = Sessions(store, identity, rng, counters)
        self.counters = counters
        #: (conv_id, epoch, peer) -> our current sending chain's key share sealed for it
        self._shares: dict[tuple[str, int, bytes], bytes] = {}
        #: (author, digest of a share's bytes) -> what it opened to, the newest last
        self._opened: OrderedDict[tuple[bytes, bytes], tuple[Any, ...]] = OrderedDict()

    def seal(self, peer: bytes, plaintext: bytes, now: float) -> bytes:
        return self.sessions.seal(peer, plaintext, now)

    def address_fields(self, now: float) -> dict[str, Any]:
        """What our signed address record carries for the sessions: our current prekey
        (none when the database fails: a link coming up must not fail with it)."""
        try:
            return {"pk": list(self.sessions.own_prekey(now))}
        except MeshError:
            self.counters["prekey_unavailable"] = self.counters.get("prekey_unavailable", 0) + 1
            return {}

    def learn_prekey(self, record: Envelope) -> None:
        """Keep the signed prekey a peer's address record carries, if any."""
        prekey = announced_prekey(record)
        if prekey is not None and record.author != self.identity.public_key:
            self.sessions.learn_prekey(record.author, prekey, record.timestamp_ms)

    def open(self, peer: bytes, data: bytes, now: float) -> bytes | None:
        """The plaintext `peer` sealed or boxed for us; None for a session message opened
        before (a duplicate: its key is gone). Raises ChatError when it does not open."""
        if not is_session_message(data):
            plaintext = unbox(self.identity, peer, data)
            self.counters["pairwise_static_box_opened"] = (
                self.counters.get("pairwise_static_box_opened", 0) + 1
            )
            return plaintext
        try:
            return self.sessions.open(peer, data, now)
        except ChatError as exc:
            if exc.reason == "ratchet_used":
                return None
            raise

    def share(
        self, peer: bytes, conv: bytes, conv_id: str, epoch: int, chain: Chain, now: float
    ) -> bytes:
        """Our sending chain's key share for `peer`, sealed once per chain and carried by
        each of its messages until the peer acknowledges it (the caller checks that).

        The share names the chain from the first message it came with, so any of those
        messages opens every later one, in any order; and a member away for 20,000
        messages costs its session one message per chain, not one per message (which,
        arriving out of order, outran the session's skipping bounds: docs/chat.md).
        """
        key = (conv_id, epoch, peer)
        share = self._shares.get(key)
        if share is None:
            if len(self._shares) >= MAX_SHARES_KEPT:
                self._shares.clear()
            share = self.seal(peer, msgpack.packb([conv, epoch, chain.chain_key, chain.index]), now)
            self._shares[key] = share
        return share

    def forget_shares(self, conv_id: str) -> None:
        """A conversation's sending chain was replaced: its shares name the old one."""
        self._shares = {k: v for k, v in self._shares.items() if k[0] != conv_id}

    def open_share(
        self, author: bytes, share: bytes | None, conv: bytes, epoch: int, index: int, now: float
    ) -> Chain | None:
        """Open the chain key a message carries, and check it belongs to that message; None
        if it carries none, or one opened before that is no longer remembered (its chain is
        stored since). A share opened before is remembered (the last 10,000): the sender
        puts the same share on each message of a chain."""
        if share is None:
            return None
        seen = (author, hashlib.blake2b(share, digest_size=16).digest())
        opened = self._opened.get(seen)
        if opened is None:
            plaintext = self.open(author, share, now)
            if plaintext is None:
                return None
            try:
                opened = tuple(msgpack.unpackb(plaintext))
            except (ValueError, TypeError, msgpack.UnpackException) as exc:
                raise ChatError("malformed key share", reason="malformed") from exc
            if len(opened) != 4:
                raise ChatError("malformed key share", reason="malformed")
            # the chain's other messages carry these same bytes, whose session key is used
            # up now: they find the share here (chat.pairwise.Pairwise.share)
            self._opened[seen] = opened
            if len(self._opened) > MAX_SHARES_KEPT:
                self._opened.popitem(last=False)
        else:
            self._opened.move_to_end(seen)
        s_conv, s_epoch, s_key, s_index = opened
        valid = (
            s_conv == conv
            and s_epoch == epoch
            and isinstance(s_key, bytes)
            and len(s_key) == 32
            and isinstance(s_index, int)
            and 0 <= s_index <= index
        )
        if not valid:
            raise ChatError("key share does not match its message", reason="bad_key_share")
        return Chain(s_key, s_index)
