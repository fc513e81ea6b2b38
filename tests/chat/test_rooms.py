"""Tests for chat.rooms: creating rooms, inviting, joining, leaving, handing over, removing.

Rooms are stepped by hand as in tests/chat/test_messages.py: unstarted nodes,
control envelopes passed from one peer's outbox to the other.
"""

from __future__ import annotations

import msgpack
import pytest

from chat.room import RoomEvent
from chat.rooms import MAX_NAME
from mesh.errors import UsageError
from mesh.wire.envelope import EnvelopeType
from tests.chat.test_messages import Peer, deliver


def member_of(admin: Peer, room: str, *peers: Peer) -> None:
    """Invite `peers` (who accept the admin at once) and let everyone hear every event."""
    for peer in peers:
        peer.chat.contacts.add(admin.id)
        admin.chat.rooms.invite(room, peer.id)
        deliver(peer, admin.take(EnvelopeType.CONTROL, peer))
        deliver(admin, peer.take(EnvelopeType.CONTROL))
    for peer in peers:
        deliver(peer, admin.take(EnvelopeType.CONTROL, peer))


def test_a_new_room_is_joined_with_its_creator_as_admin() -> None:
    admin = Peer("admin")
    room = admin.chat.rooms.new("  plans  ")
    [listed] = admin.chat.rooms.all()
    assert listed["room_id"] == room and listed["name"] == "plans"
    assert listed["state"] == "joined" and listed["epoch"] == 0
    assert admin.chat.rooms.state(room).admin == admin.node.identity.public_key
    assert admin.chat.rooms.resolve("plans") == room
    assert admin.chat.rooms.resolve(room[:6]) == room


@pytest.mark.parametrize("name", ["", "   ", "x" * (MAX_NAME + 1)])
def test_a_room_name_has_1_to_max_name_characters(name: str) -> None:
    with pytest.raises(UsageError, match="room name"):
        Peer("admin").chat.rooms.new(name)


def test_an_unknown_room_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match="no room matches 'nowhere'"):
        Peer("admin").chat.rooms.invite("nowhere", Peer("guest").id)


def test_an_invitee_joins_and_the_admin_counts_it_a_member() -> None:
    admin, guest = Peer("admin"), Peer("guest")
    room = admin.chat.rooms.new("plans")
    result = admin.chat.rooms.invite(room, guest.id)
    assert result == {"room_id": room, "invited": guest.id}
    deliver(guest, admin.take(EnvelopeType.CONTROL, guest))
    assert guest.chat.rooms.all()[0]["state"] == "invited"
    assert guest.chat.rooms.join(room) == {"room_id": room, "state": "joined"}
    deliver(admin, guest.take(EnvelopeType.CONTROL))
    assert guest.node.identity.public_key in admin.chat.rooms.state(room).members
    with pytest.raises(UsageError, match="already a member"):
        guest.chat.rooms.join(room)
    with pytest.raises(UsageError, match="already a member"):
        admin.chat.rooms.invite(room, guest.id)


def test_only_the_admin_invites_removes_and_hands_over() -> None:
    admin, member, other = Peer("admin"), Peer("member"), Peer("other")
    room = admin.chat.rooms.new("plans")
    member_of(admin, room, member)
    with pytest.raises(UsageError, match="only the room's admin can invite"):
        member.chat.rooms.invite(room, other.id)
    with pytest.raises(UsageError, match="only the room's admin can remove"):
        member.chat.rooms.remove(room, admin.id)
    with pytest.raises(UsageError, match="only the room's admin can hand"):
        member.chat.rooms.hand_over(room, member.id)


def test_removing_needs_someone_in_the_room_and_not_the_admin() -> None:
    admin, outsider = Peer("admin"), Peer("outsider")
    room = admin.chat.rooms.new("plans")
    with pytest.raises(UsageError, match="is not in the room"):
        admin.chat.rooms.remove(room, outsider.id)
    with pytest.raises(UsageError, match="cannot remove itself"):
        admin.chat.rooms.remove(room, admin.id)
    with pytest.raises(UsageError, match="not another member"):
        admin.chat.rooms.hand_over(room, outsider.id)
    member_of(admin, room, outsider)
    result = admin.chat.rooms.remove(room, outsider.id)
    assert result == {"room_id": room, "removed": outsider.id, "epoch": 1}
    assert admin.chat.rooms.state(room).epoch == 1


def test_a_member_leaves_but_the_admin_must_hand_over_first() -> None:
    admin, member = Peer("admin"), Peer("member")
    room = admin.chat.rooms.new("plans")
    member_of(admin, room, member)
    with pytest.raises(UsageError, match="hand the room over first"):
        admin.chat.rooms.leave(room)
    member.chat.rooms.leave(room)
    deliver(admin, member.take(EnvelopeType.CONTROL))
    assert member.node.identity.public_key not in admin.chat.rooms.state(room).members
    with pytest.raises(UsageError, match="not a member"):
        member.chat.rooms.leave(room)


def test_a_handed_over_room_has_a_new_admin_everywhere() -> None:
    admin, heir = Peer("admin"), Peer("heir")
    room = admin.chat.rooms.new("plans")
    member_of(admin, room, heir)
    admin.chat.rooms.hand_over(room, heir.id)
    deliver(heir, admin.take(EnvelopeType.CONTROL, heir))
    heir_key = heir.node.identity.public_key
    assert admin.chat.rooms.state(room).admin == heir_key
    assert heir.chat.rooms.state(room).admin == heir_key
    admin.chat.rooms.leave(room)  # no longer the admin: it may go
    assert admin.node.identity.public_key not in admin.chat.rooms.state(room).members


def test_removing_an_invitee_keeps_the_epoch_and_a_departed_peer_can_be_cut_shorter() -> None:
    admin, invitee, leaver = Peer("admin"), Peer("invitee"), Peer("leaver")
    room = admin.chat.rooms.new("plans")
    admin.chat.rooms.invite(room, invitee.id)
    assert admin.chat.rooms.remove(room, invitee.id)["epoch"] == 0  # no member left
    member_of(admin, room, leaver)
    leaver.chat.rooms.leave(room)
    deliver(admin, leaver.take(EnvelopeType.CONTROL))
    key = leaver.node.identity.public_key
    assert key in admin.chat.rooms.state(room).departed
    # the admin may still remove a peer that left: only its cut can go down, not the epoch
    result = admin.chat.rooms.remove(room, leaver.id)
    state = admin.chat.rooms.state(room)
    assert result["epoch"] == state.epoch == 1
    assert state.cuts[key] == 0  # the admin holds none of its room envelopes


def test_a_join_that_waits_for_an_earlier_join_still_gets_the_document_key() -> None:
    """Found with 30 nodes joining at once: b heard a's join before the admin did, so b's
    join named it and waited at the admin; when a's join came, both counted, but only the
    event that had just arrived was answered, and b never got the room's document key."""
    admin, a, b = Peer("admin"), Peer("a"), Peer("b")
    room = admin.chat.rooms.new("plans")
    admin.chat.rooms.invite(room, a.id)
    admin.chat.rooms.invite(room, b.id)
    deliver(a, admin.take(EnvelopeType.CONTROL, a))
    deliver(b, admin.take(EnvelopeType.CONTROL, b))
    a.chat.rooms.join(room)
    deliver(b, a.take(EnvelopeType.CONTROL, b))  # b hears of a's join first
    b.chat.rooms.join(room)
    deliver(admin, b.take(EnvelopeType.CONTROL, admin))  # names a's join: it waits
    assert b.node.identity.public_key not in admin.chat.rooms.state(room).members
    deliver(admin, a.take(EnvelopeType.CONTROL, admin))
    assert {a.node.identity.public_key, b.node.identity.public_key} <= set(
        admin.chat.rooms.state(room).members
    )
    for peer in (a, b):
        deliver(peer, admin.take(EnvelopeType.CONTROL, peer))
        assert peer.chat.rooms.document_key(room, 0) == admin.chat.rooms.document_key(room, 0)
        assert len(peer.chat.rooms.state(room).members) == 3


def test_a_state_read_again_inside_transactions_checks_no_signature_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every control message is taken in a transaction, where the state is not cached: it
    was folded again from every event, each signature checked again (about a third of
    the CPU time of 20 nodes joining one room, profiled)."""
    admin, a, b = Peer("admin"), Peer("a"), Peer("b")
    room = admin.chat.rooms.new("plans")
    member_of(admin, room, a, b)
    events = len(admin.chat.rooms._events(room))
    checks: list[bytes] = []
    decode = RoomEvent.decode.__func__  # type: ignore[attr-defined]

    def counted(cls: type[RoomEvent], signed: bytes) -> RoomEvent:
        checks.append(signed)
        return decode(cls, signed)  # type: ignore[no-any-return]

    monkeypatch.setattr(RoomEvent, "decode", classmethod(counted))
    for _ in range(5):
        with admin.chat.store.atomic():
            assert len(admin.chat.rooms.state(room).members) == 3
    assert checks == []
    admin.chat.rooms._checked.clear()  # a new process: each checked once, then kept
    for _ in range(5):
        with admin.chat.store.atomic():
            admin.chat.rooms.state(room)
    assert len(checks) == events


def test_a_joiner_gets_the_whole_graph_in_one_events_message_and_a_bad_event_alone_is_refused() -> (
    None
):
    admin, a, b, c = Peer("admin"), Peer("a"), Peer("b"), Peer("c")
    room = admin.chat.rooms.new("plans")
    member_of(admin, room, a, b)
    admin.chat.rooms.invite(room, c.id)
    deliver(c, admin.take(EnvelopeType.CONTROL, c))
    c.chat.rooms.join(room)
    admin.take(EnvelopeType.CONTROL)  # the invitation's news for a and b
    deliver(admin, c.take(EnvelopeType.CONTROL, admin))
    to_c = admin.take(EnvelopeType.CONTROL, c)
    bodies = [
        msgpack.unpackb(c.chat.pairwise.open(admin.node.identity.public_key, e.payload, 0))
        for e in to_c
    ]
    # the join's answer: the room's events in one message, then the document keys
    assert [body["k"] for body in bodies] == ["events", "dockeys"]
    assert len(bodies[0]["events"]) == len(admin.chat.rooms._events(room))
    # a batch with one event of another room: the rest is kept, the one counted
    other = admin.chat.rooms.new("elsewhere")
    stranger = admin.chat.rooms._events(other)[0].signed
    d = Peer("d")
    admin.chat.rooms.invite(room, d.id)
    deliver(d, admin.take(EnvelopeType.CONTROL, d))
    events = [e.signed for e in admin.chat.rooms._events(room)]
    taken = d.chat.rooms.handle_control(
        admin.node.identity.public_key,
        {
            "k": "events",
            "room": admin.chat.rooms.state(room).room_id,
            "events": [stranger, *events],
        },
    )
    assert taken == room
    assert d.chat.rooms.refused_in_batch == 1
    assert d.chat.status()["counters"]["room_events_refused"] == 1
    assert len(d.chat.rooms.state(room).members) == 4
