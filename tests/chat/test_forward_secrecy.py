"""Forward secrecy and post-compromise security of what two peers send each other.

A recording relay keeps every envelope that passes between Alice and Bob: direct
messages, room messages with their key shares, and the control messages of the
room (invitation, join, membership events). The attacker then gets keys:

- both long-term identity keys, after the conversation (forward secrecy): it runs
  the real client with those identities on empty stores, feeds it the recording,
  and also tries the static crypto_box every pairwise payload used to be;
- one party's whole state, copied mid-conversation (post-compromise security): the
  copy reads what is sealed to it until both sides have sent again, each in answer
  to the other (a ratchet key drawn after the theft has then gone each way), and
  nothing after.
"""

from __future__ import annotations

import time

import msgpack
import pytest

from chat.pairwise import unbox
from chat.senderkey import ROTATE_SECONDS
from chat.sessions import is_session_message
from mesh.errors import ChatError, StorageError
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import Identity
from tests.chat.test_messages import Peer, deliver

SHOWN = (EnvelopeType.CHAT, EnvelopeType.CONTROL)


class Relay:
    """Passes what each peer sent to the other, keeping a copy of everything."""

    def __init__(self, *peers: Peer) -> None:
        self.peers = peers
        self.recorded: list[Envelope] = []

    def run(self) -> None:
        """Deliver until nobody has anything left to send to the others."""
        moved = True
        while moved:
            moved = False
            for src in self.peers:
                for dst in self.peers:
                    if src is dst:
                        continue
                    for kind in (*SHOWN, EnvelopeType.RECEIPT):
                        envelopes = src.take(kind, dst)
                        self.recorded += envelopes
                        if envelopes:
                            deliver(dst, envelopes)
                            moved = True


def publish_prekeys(*peers: Peer) -> None:
    """Each peer's signed address record (its prekey inside) reaches the others."""
    for peer in peers:
        record = peer.node.addresses.own([])
        assert record is not None
        for other in peers:
            if other is not peer:
                other.chat._on_address(record)


def identity_only(peer: Peer | Identity, recorded: list[Envelope]) -> list[str]:
    """What an attacker holding only `peer`'s identity key reads of the recording: the real
    client, with that identity and an empty store, fed every envelope sent to the peer."""
    identity = peer if isinstance(peer, Identity) else peer.node.identity
    attacker = Peer(identity.name, identity)
    to_peer = [e for e in recorded if e.dest == identity.public_key]
    deliver(attacker, [e for e in to_peer if e.type in SHOWN])
    return [
        m["text"]
        for c in attacker.chat.conversations()
        for m in attacker.chat.history(c["conv_id"])
    ]


def static_boxes_opened(a: Identity, b: Identity, recorded: list[Envelope]) -> int:
    """How many pairwise payloads (controls, key shares, DM contents) open as the static
    crypto_box between the two identity keys, the scheme before sessions."""
    opened = 0
    for envelope in recorded:
        if envelope.type == EnvelopeType.CONTROL:
            candidates = [envelope.payload]
        elif envelope.type == EnvelopeType.CHAT:
            _, _, _, sealed, share = msgpack.unpackb(envelope.payload)
            candidates = [sealed] + ([share] if share else [])
        else:
            continue
        receiver = a if envelope.dest == a.public_key else b
        sender = b if receiver is a else a
        for blob in candidates:
            try:
                unbox(receiver, sender.public_key, blob)
            except ChatError:
                continue
            opened += 1
    return opened


def converse(a: Peer, b: Peer, relay: Relay) -> str:
    """A room made, joined, talked in, and direct messages both ways, all through the relay."""
    room = a.chat.rooms.new("team")
    b.chat.contacts.add(a.id)  # so the invitation is accepted at once
    a.chat.rooms.invite(room, b.id)
    relay.run()
    assert b.chat.rooms.state(room).members == a.chat.rooms.state(room).members
    for i in range(3):
        a.chat.send_direct(b.id, f"dm a->b {i}")
        b.chat.send_direct(a.id, f"dm b->a {i}")
        a.chat.say(room, f"room a {i}")
        b.chat.say(room, f"room b {i}")
        relay.run()
    return room


def test_identity_keys_taken_afterwards_open_no_recorded_message_share_or_control() -> None:
    a, b = Peer("alice"), Peer("bob")
    publish_prekeys(a, b)
    relay = Relay(a, b)
    room = converse(a, b, relay)
    shown = [m["text"] for m in b.chat.history(room)]
    assert len(shown) == 6 and {"room a 2", "room b 2"} <= set(shown)  # sent in one millisecond
    pairwise = [e for e in relay.recorded if e.type in SHOWN]
    assert len(pairwise) >= 14  # 6 direct, 6 in the room, the room's control messages
    assert all(
        is_session_message(e.payload) for e in relay.recorded if e.type == EnvelopeType.CONTROL
    )
    assert identity_only(a, relay.recorded) == []
    assert identity_only(b, relay.recorded) == []
    assert static_boxes_opened(a.node.identity, b.node.identity, relay.recorded) == 0
    assert a.chat.counters.get("session_started_without_prekey") is None


def test_without_a_published_prekey_the_first_messages_are_open_to_the_identity_key() -> None:
    """The gap the prekeys close (and proof that the attacker above is a real one): when
    no prekey of Bob's is known, the identity key stands in, and whoever takes Bob's
    identity key reads what was sent before his first answer."""
    a, b = Peer("alice"), Peer("bob")
    relay = Relay(a, b)
    a.chat.send_direct(b.id, "before any answer")
    relay.run()
    assert a.chat.counters["session_started_without_prekey"] == 1
    assert identity_only(b, relay.recorded) == ["before any answer"]
    b.chat.send_direct(a.id, "answer")
    relay.run()
    a.chat.send_direct(b.id, "after the answer")  # on the ratchet key the answer brought
    relay.run()
    assert "after the answer" not in identity_only(b, relay.recorded)


def clone(peer: Peer) -> Peer:
    """An attacker holding a copy of `peer`'s whole state: identity and database."""
    copy = Peer(peer.node.identity.name)
    peer.chat.store.db.conn.backup(copy.chat.store.db.conn)
    return copy


def read_by(attacker: Peer, envelopes: list[Envelope]) -> list[str]:
    before = {
        m["id"] for c in attacker.chat.conversations() for m in attacker.chat.history(c["conv_id"])
    }
    deliver(attacker, [e for e in envelopes if e.type in SHOWN])
    return [
        m["text"]
        for c in attacker.chat.conversations()
        for m in attacker.chat.history(c["conv_id"])
        if m["id"] not in before
    ]


def test_after_a_full_compromise_both_sides_sending_again_locks_the_attacker_out() -> None:
    a, b = Peer("alice"), Peer("bob")
    publish_prekeys(a, b)
    relay = Relay(a, b)
    room = converse(a, b, relay)
    stolen = clone(a)  # Alice's identity, sessions, sender keys: everything
    mark = len(relay.recorded)

    # the copy reads what Bob seals to Alice's state as stolen...
    b.chat.send_direct(a.id, "still exposed")
    relay.run()
    assert read_by(stolen, relay.recorded[mark:]) == ["still exposed"]

    # ...until both have sent again, each in answer to the other: a fresh ratchet key
    # drawn after the theft has gone each way (the exchange of the Double Ratchet)
    a.chat.send_direct(b.id, "answer")
    relay.run()
    b.chat.send_direct(a.id, "answer to the answer")
    relay.run()
    a.chat.send_direct(b.id, "and back")
    relay.run()
    mark = len(relay.recorded)
    a.chat.send_direct(b.id, "new from alice")
    b.chat.send_direct(a.id, "new from bob")
    # Bob's room chain moves on (its rotation time), and its key goes to Alice on the session
    later = time.time() + ROTATE_SECONDS
    b.node.clock = lambda: later  # type: ignore[method-assign]
    b.chat.say(room, "new room key")
    relay.run()
    assert b.chat.counters["senderkey_rotated"] == 1
    new = relay.recorded[mark:]
    assert any(e.type == EnvelopeType.CHAT and msgpack.unpackb(e.payload)[4] for e in new)
    assert read_by(stolen, new) == []
    assert "new from bob" in [m["text"] for m in a.chat.history(b.id)]
    assert [m["text"] for m in a.chat.history(room)][-1] == "new room key"


def test_a_database_error_leaves_the_prekey_out_of_the_record_not_the_link_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = Peer("alice")

    def broken(now: float) -> tuple[int, bytes]:
        raise StorageError("database error: disk I/O error")

    monkeypatch.setattr(a.chat.pairwise.sessions, "own_prekey", broken)
    record = a.node.addresses.own(["ws://127.0.0.1:9"])
    assert record is not None
    # the rest of the record is there (its addresses, name, and that it takes bundles)
    assert msgpack.unpackb(record.payload) == {
        "addrs": ["ws://127.0.0.1:9"],
        "name": "alice",
        "bn": 1,
    }
    assert a.chat.counters["prekey_unavailable"] == 1
