"""Chat rules stepped without sockets: two or three Chat objects, envelopes passed by hand.

Nodes here are never started: `Chat` only needs their router (to sign), their
identity and clock, and a `send` that the test captures. Each test decides
which envelope reaches whom, in which order, and what is altered on the way.
"""

from __future__ import annotations

import msgpack
import pytest

from chat.messages import Chat, dm_conversation_id
from chat.sessions import is_session_message
from mesh.errors import UsageError
from mesh.routing.replay import REPLAY_INTERVAL
from mesh.runtime.node import Node
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity


class Peer:
    """A chat endpoint whose outgoing envelopes pile up in `sent`."""

    def __init__(self, name: str, identity: Identity | None = None) -> None:
        self.node = Node(identity or Identity.from_seed(name.encode().ljust(32, b"."), name))
        self.sent: list[Envelope] = []
        self.node.send = self.sent.append  # type: ignore[method-assign]
        self.chat = Chat(self.node, Store(None))
        self.id = self.node.identity.peer_id

    def take(self, type: EnvelopeType, dest: Peer | None = None) -> list[Envelope]:
        """Remove and return what was sent of `type` (to `dest`)."""
        picked = [
            e
            for e in self.sent
            if e.type == type and (dest is None or e.dest == dest.node.identity.public_key)
        ]
        self.sent[:] = [e for e in self.sent if e not in picked]  # node.send appends here
        return picked

    def texts(self, conversation: str) -> list[str]:
        return [m["text"] for m in self.chat.history(conversation)]


def deliver(peer: Peer, envelopes: list[Envelope]) -> None:
    handlers = {
        EnvelopeType.CHAT: peer.chat._on_chat,
        EnvelopeType.CONTROL: peer.chat._on_control,
        EnvelopeType.RECEIPT: peer.chat._on_receipt,
    }
    for envelope in envelopes:
        handlers[EnvelopeType(envelope.type)](envelope)


def resign(author: Peer, envelope: Envelope, payload: bytes) -> Envelope:
    """What a malicious author could send: its own valid signature over altered content."""
    return author.node.router.make(
        envelope.type,
        author.node.clock(),
        dest_kind=DestKind.PEER,
        dest=envelope.dest,
        payload=payload,
    )


def room_of(admin: Peer, *members: Peer, name: str = "team") -> str:
    """A room made by `admin` whose `members` have joined, every event delivered."""
    room = admin.chat.rooms.new(name)
    for peer in members:
        peer.chat.contacts.add(admin.id)  # so the invitation is accepted at once
        admin.chat.rooms.invite(room, peer.id)
        deliver(peer, admin.take(EnvelopeType.CONTROL, peer))
        deliver(admin, peer.take(EnvelopeType.CONTROL))
    for peer in members:
        deliver(peer, admin.take(EnvelopeType.CONTROL, peer))  # the admin's relayed events
    return room


@pytest.fixture
def pair() -> tuple[Peer, Peer]:
    return Peer("alice"), Peer("bob")


def test_a_direct_message_is_stored_once_and_receipted(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    msg_id = a.chat.send_direct(b.id, "hello")
    deliver(b, a.take(EnvelopeType.CHAT))
    assert b.texts(a.id) == ["hello"]
    assert b.chat.history(a.id)[0]["id"] == msg_id
    deliver(a, b.take(EnvelopeType.RECEIPT))
    assert a.chat.history(b.id)[0]["status"] == "delivered"
    assert a.chat.status()["outbox"] == 0


def test_replays_show_once_and_are_receipted_again_once_per_interval(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    now = [1_000_000.0]
    b.node.clock = lambda: now[0]
    a.chat.send_direct(b.id, "once")
    [envelope] = a.take(EnvelopeType.CHAT)
    rewrapped = resign(a, envelope, envelope.payload)  # an outbox retry looks like this
    deliver(b, [envelope, envelope, rewrapped])
    assert b.texts(a.id) == ["once"]
    assert b.chat.counters["chat_duplicate"] == 2
    # the replay of the very envelope within the interval is not receipted again
    assert len(b.take(EnvelopeType.RECEIPT)) == 2
    assert b.chat.counters["receipt_refused_replay"] == 1
    now[0] += REPLAY_INTERVAL
    deliver(b, [envelope])  # a lost first receipt is still made up for, later
    assert len(b.take(EnvelopeType.RECEIPT)) == 1


def test_tampered_content_is_rejected_and_counted(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    a.chat.send_direct(b.id, "genuine")
    [envelope] = a.take(EnvelopeType.CHAT)
    conv, epoch, index, sealed, share = msgpack.unpackb(envelope.payload)
    altered = bytearray(sealed)
    altered[-1] ^= 0x01
    deliver(b, [resign(a, envelope, msgpack.packb([conv, epoch, index, bytes(altered), share]))])
    assert b.texts(a.id) == []
    assert b.chat.counters["chat_rejected_tampered"] == 1
    assert not b.take(EnvelopeType.RECEIPT)
    deliver(b, [envelope])  # the genuine one still works: the failed attempt used no key
    assert b.texts(a.id) == ["genuine"]


def test_content_cannot_be_passed_off_under_another_author(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    mallory = Peer("mallory")
    a.chat.send_direct(b.id, "for bob")
    [envelope] = a.take(EnvelopeType.CHAT)
    # mallory re-sends alice's payload signed as her own: it names alice's conversation,
    # which is not hers with bob, so bob holds it as for an unknown room and shows nothing
    deliver(b, [resign(mallory, envelope, envelope.payload)])
    assert b.texts(mallory.id) == [] and b.texts(a.id) == []
    assert b.chat.counters["chat_held"] == 1
    # swapped into her own conversation with bob, alice's share and seal fail to open
    _, epoch, index, sealed, share = msgpack.unpackb(envelope.payload)
    own = dm_conversation_id(mallory.node.identity.public_key, b.node.identity.public_key)
    deliver(b, [resign(mallory, envelope, msgpack.packb([own, epoch, index, sealed, share]))])
    assert b.texts(mallory.id) == []
    assert b.chat.counters["chat_rejected_tampered"] == 1


def test_messages_arriving_out_of_order_all_show_in_order(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    for text in ("one", "two", "three", "four"):
        a.chat.send_direct(b.id, text)
    sent = a.take(EnvelopeType.CHAT)
    deliver(b, [sent[2], sent[0], sent[3], sent[1]])
    assert b.texts(a.id) == ["one", "two", "three", "four"]
    deliver(b, [sent[1]])  # its skipped key was used up: a replay
    assert b.texts(a.id) == ["one", "two", "three", "four"]


def test_only_the_first_messages_carry_the_key_until_a_receipt() -> None:
    a, b = Peer("alice"), Peer("bob")
    room = room_of(a, b)
    a.chat.say(room, "first")
    [first] = a.take(EnvelopeType.CHAT)
    assert msgpack.unpackb(first.payload)[4] is not None
    deliver(b, [first])
    deliver(a, b.take(EnvelopeType.RECEIPT))
    a.chat.say(room, "second")
    [second] = a.take(EnvelopeType.CHAT)
    assert msgpack.unpackb(second.payload)[4] is None  # bob holds the chain already
    deliver(b, [second])
    assert b.texts(room) == ["first", "second"]


def test_a_direct_message_is_sealed_on_the_pair_session_with_no_key_share(
    pair: tuple[Peer, Peer],
) -> None:
    a, b = pair
    a.chat.send_direct(b.id, "first")
    [first] = a.take(EnvelopeType.CHAT)
    _, _, index, sealed, share = msgpack.unpackb(first.payload)
    assert share is None and is_session_message(sealed) and index == 0
    deliver(b, [first])
    b.chat.send_direct(a.id, "answer")
    deliver(a, b.take(EnvelopeType.CHAT))
    assert sorted(a.texts(b.id)) == ["answer", "first"]  # may share a millisecond
    assert a.chat.pairwise.sessions.status()["sessions"] == 1  # one session, both ways


def test_strangers_start_requests_and_contacts_do_not(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    a.chat.send_direct(b.id, "hi")
    deliver(b, a.take(EnvelopeType.CHAT))
    assert [c["state"] for c in b.chat.conversations()] == ["request"]
    b.chat.contacts.add(a.id, "alice")
    assert [c["state"] for c in b.chat.conversations()] == ["active"]
    assert b.texts("alice") == ["hi"]


def test_invitations_from_strangers_wait_for_join() -> None:
    admin, guest = Peer("admin"), Peer("guest")
    room = admin.chat.rooms.new("plans")
    admin.chat.rooms.invite(room, guest.id)
    deliver(guest, admin.take(EnvelopeType.CONTROL))
    assert guest.chat.rooms.all()[0]["state"] == "invited"
    with pytest.raises(UsageError):
        guest.chat.say(room, "too early")
    guest.chat.rooms.join(room)
    deliver(admin, guest.take(EnvelopeType.CONTROL))
    assert guest.node.identity.public_key in admin.chat.rooms.state(room).members
    guest.chat.say(room, "joined")
    deliver(admin, guest.take(EnvelopeType.CHAT))
    assert admin.texts(room) == ["joined"]


def test_an_invitation_not_from_the_admin_is_refused() -> None:
    admin, member, target = Peer("admin"), Peer("member"), Peer("target")
    room = admin.chat.rooms.new("plans")
    admin.chat.rooms.invite(room, target.id)
    [invitation] = admin.take(EnvelopeType.CONTROL, target)
    # a member forwards the admin's invitation as its own: sealed by it, but not the admin
    body = target.chat.pairwise.open(admin.node.identity.public_key, invitation.payload, 0.0)
    assert body is not None
    sealed = member.chat.pairwise.seal(invitation.dest, body, 0.0)
    forwarded = resign(member, invitation, sealed)
    deliver(target, [forwarded])
    assert target.chat.rooms.all() == []
    assert target.chat.counters.get("control_rejected_not_admin") == 1


def test_removal_starts_an_epoch_the_removed_member_cannot_read() -> None:
    admin, stays, goes = Peer("admin"), Peer("stays"), Peer("goes")
    room = admin.chat.rooms.new("team")
    for peer in (stays, goes):
        peer.chat.contacts.add(admin.id)  # so the invitation is accepted at once
        admin.chat.rooms.invite(room, peer.id)
        deliver(peer, admin.take(EnvelopeType.CONTROL, peer))
        deliver(admin, peer.take(EnvelopeType.CONTROL))
    for peer in (stays, goes):
        deliver(peer, admin.take(EnvelopeType.CONTROL, peer))  # the admin's relayed events
    assert len(goes.chat.rooms.state(room).members) == 3

    admin.chat.rooms.remove(room, goes.id)
    deliver(stays, admin.take(EnvelopeType.CONTROL, stays))
    deliver(goes, admin.take(EnvelopeType.CONTROL, goes))
    admin.chat.say(room, "secret plans")
    sent = admin.take(EnvelopeType.CHAT)
    assert [e.dest for e in sent] == [stays.node.identity.public_key]  # nothing for goes
    deliver(stays, sent)
    assert stays.texts(room) == ["secret plans"]
    # even holding the envelope, the removed member cannot read it
    assert msgpack.unpackb(sent[0].payload)[1] == 1  # the epoch
    deliver(goes, [sent[0]])
    assert goes.texts(room) == []
    assert goes.chat.keys.chain(room, 1, admin.id) is None


def test_a_conversation_is_found_by_its_exact_id(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    a.chat.send_direct(b.id, "hi")
    [listed] = a.chat.conversations()
    assert a.chat.conversation(listed["conv_id"]) == listed
    assert listed["kind"] == "dm" and listed["peer_id"] == b.id
    assert a.chat.conversation("no-such-id") is None


def test_a_peer_without_a_route_is_not_reachable(pair: tuple[Peer, Peer]) -> None:
    a, b = pair
    assert not a.chat.contacts.reachable(b.id)
