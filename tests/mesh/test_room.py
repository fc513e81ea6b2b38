"""Tests for mesh.room: the membership fold rules and strict decoding of signed events."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesh.errors import ChatError
from mesh.identity import Identity
from mesh.room import MAX_EVENT_SIZE, MAX_NAME, RoomEvent, RoomState, fold

ADMIN = Identity.from_seed(bytes(range(32)))
BOB = Identity.from_seed(bytes(range(32, 64)))
CAROL = Identity.from_seed(bytes(range(64, 96)))
MALLORY = Identity.from_seed(bytes(range(96, 128)))
ROOM = bytes(range(0xA0, 0xC0))
OTHER_ROOM = bytes(range(0xC0, 0xE0))
T = 1_700_000_000_000


def ev(who: Identity, kind: str, ts: int, target: Identity | None = None, **kw: Any) -> RoomEvent:
    tgt = target.public_key if target is not None else b""
    return RoomEvent.create(who, kw.pop("room", ROOM), kind, T + ts, target=tgt, **kw)


def create(ts: int = 0) -> RoomEvent:
    return ev(ADMIN, "create", ts, name="garden")


def invite(who: Identity, ts: int, by: Identity = ADMIN) -> RoomEvent:
    return ev(by, "invite", ts, who)


def join(who: Identity, ts: int) -> RoomEvent:
    return ev(who, "join", ts, who)


def membership(state: RoomState) -> tuple[Any, ...]:
    """What the fold decides, without the bookkeeping list of applied events."""
    return (
        state.admin,
        state.name,
        frozenset(state.members),
        frozenset(state.invited),
        frozenset(state.departed),
        state.epoch,
    )


#: a room where bob is a member and carol an invitee, at epoch 0
BASE = [create(0), invite(BOB, 1), join(BOB, 2), invite(CAROL, 3)]


# --- fold rules -----------------------------------------------------------------------


def test_create_makes_its_author_admin_and_member() -> None:
    state = fold(ROOM, [create()])
    assert state.admin == ADMIN.public_key
    assert state.name == "garden"
    assert state.members == {ADMIN.public_key}
    assert (state.invited, state.departed, state.epoch) == (set(), set(), 0)


def test_a_second_create_is_ignored() -> None:
    state = fold(ROOM, [create(0), ev(BOB, "create", 1, name="mine")])
    assert (state.admin, state.name) == (ADMIN.public_key, "garden")
    assert state.members == {ADMIN.public_key}


def test_a_create_with_a_target_is_ignored() -> None:
    state = fold(ROOM, [ev(ADMIN, "create", 0, BOB, name="garden")])
    assert state.admin is None and state.members == set()


def test_only_the_admin_can_invite() -> None:
    state = fold(ROOM, [*BASE, invite(MALLORY, 10, by=BOB), invite(MALLORY, 11, by=MALLORY)])
    assert MALLORY.public_key not in state.invited


def test_the_admin_invites_and_the_invitee_joins() -> None:
    state = fold(ROOM, BASE)
    assert state.members == {ADMIN.public_key, BOB.public_key}
    assert state.invited == {CAROL.public_key}
    assert state.epoch == 0


def test_a_join_without_an_invite_is_ignored() -> None:
    state = fold(ROOM, [*BASE, join(MALLORY, 10)])
    assert MALLORY.public_key not in state.members


def test_removing_a_member_starts_a_new_epoch() -> None:
    state = fold(ROOM, [*BASE, ev(ADMIN, "remove", 10, BOB)])
    assert state.members == {ADMIN.public_key}
    assert state.departed == {BOB.public_key}
    assert state.epoch == 1


def test_removing_an_invitee_does_not_start_a_new_epoch() -> None:
    state = fold(ROOM, [*BASE, ev(ADMIN, "remove", 10, CAROL)])
    assert state.invited == set()
    assert state.departed == {CAROL.public_key}
    assert state.epoch == 0
    # and the removed invitee can no longer join
    later = fold(ROOM, [*BASE, ev(ADMIN, "remove", 10, CAROL), join(CAROL, 11)])
    assert CAROL.public_key not in later.members


def test_only_the_admin_can_remove() -> None:
    state = fold(ROOM, [*BASE, join(CAROL, 4), ev(BOB, "remove", 10, CAROL)])
    assert CAROL.public_key in state.members
    assert state.epoch == 0


def test_removing_a_stranger_changes_nothing() -> None:
    state = fold(ROOM, [*BASE, ev(ADMIN, "remove", 10, MALLORY)])
    assert membership(state) == membership(fold(ROOM, BASE))


def test_leaving_starts_a_new_epoch() -> None:
    state = fold(ROOM, [*BASE, ev(BOB, "leave", 10)])
    assert state.members == {ADMIN.public_key}
    assert state.departed == {BOB.public_key}
    assert state.epoch == 1


def test_an_invitee_cannot_leave() -> None:
    state = fold(ROOM, [*BASE, ev(CAROL, "leave", 10)])
    assert state.invited == {CAROL.public_key}
    assert state.epoch == 0


def test_every_departure_counts_an_epoch() -> None:
    events = [*BASE, join(CAROL, 4), ev(BOB, "leave", 10), ev(ADMIN, "remove", 11, CAROL)]
    assert fold(ROOM, events).epoch == 2


def test_the_admin_cannot_be_removed_or_leave() -> None:
    state = fold(ROOM, [*BASE, ev(ADMIN, "remove", 10, ADMIN), ev(ADMIN, "leave", 11)])
    assert state.admin == ADMIN.public_key
    assert ADMIN.public_key in state.members
    assert state.epoch == 0


def test_a_departed_member_can_be_invited_back() -> None:
    events = [*BASE, ev(ADMIN, "remove", 10, BOB), invite(BOB, 11), join(BOB, 12)]
    state = fold(ROOM, events)
    assert BOB.public_key in state.members
    assert state.departed == set()
    assert state.epoch == 1  # rejoining does not undo the departure's epoch


def test_nothing_counts_in_a_room_that_was_never_created() -> None:
    state = fold(ROOM, [invite(BOB, 1), join(BOB, 2), ev(BOB, "leave", 3)])
    assert state.admin is None
    assert (state.members, state.invited, state.departed, state.epoch) == (set(), set(), set(), 0)
    assert state.applied == []


def test_events_timestamped_before_the_create_wait_for_it() -> None:
    # clocks differ: an invite stamped before the create is retried once the room exists
    state = fold(ROOM, [create(100), invite(BOB, 1)])
    assert state.invited == {BOB.public_key}
    assert [e.kind for e in state.applied] == ["create", "invite"]


def test_a_join_stamped_before_its_invite_still_applies() -> None:
    state = fold(ROOM, [create(0), join(BOB, 5), invite(BOB, 10)])
    assert BOB.public_key in state.members
    assert [e.kind for e in state.applied] == ["create", "invite", "join"]


def test_duplicate_events_are_harmless() -> None:
    events = [*BASE, join(CAROL, 4), ev(BOB, "leave", 10), ev(ADMIN, "remove", 11, CAROL)]
    state = fold(ROOM, events + events + events[::-1])
    assert membership(state) == membership(fold(ROOM, events))
    assert state.epoch == 2


def test_events_for_another_room_are_ignored() -> None:
    foreign = [
        ev(ADMIN, "invite", 5, MALLORY, room=OTHER_ROOM),
        ev(ADMIN, "remove", 6, BOB, room=OTHER_ROOM),
    ]
    state = fold(ROOM, [*BASE, *foreign])
    assert membership(state) == membership(fold(ROOM, BASE))
    assert fold(OTHER_ROOM, BASE).admin is None


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.randoms(use_true_random=False))
def test_fold_converges_whatever_the_arrival_order(rng: random.Random) -> None:
    events = [
        *BASE,
        join(CAROL, 4),
        ev(BOB, "leave", 10),
        invite(MALLORY, 11),
        join(MALLORY, 12),
        ev(ADMIN, "remove", 13, CAROL),
        invite(BOB, 14),
        join(BOB, 15),
    ]
    shuffled = events[:]
    rng.shuffle(shuffled)
    assert membership(fold(ROOM, shuffled)) == membership(fold(ROOM, events))


# --- encoding and decoding -----------------------------------------------------------


def signed(body: Any, signer: Identity = ADMIN) -> bytes:
    packed: bytes = msgpack.packb(body)
    return packed + signer.sign(packed)


def good_body(**changes: Any) -> list[Any]:
    fields = {
        "version": 1,
        "room_id": ROOM,
        "kind": "invite",
        "target": BOB.public_key,
        "ts": T,
        "author": ADMIN.public_key,
        "name": "",
    }
    fields.update(changes)
    return list(fields.values())


def test_decode_returns_what_create_made() -> None:
    event = ev(ADMIN, "invite", 1, BOB)
    decoded = RoomEvent.decode(event.signed)
    assert decoded == event
    assert decoded.event_id == event.event_id
    assert RoomEvent.decode(signed(good_body())).target == BOB.public_key


def test_create_truncates_long_names_and_refuses_unknown_kinds() -> None:
    event = ev(ADMIN, "create", 0, name="x" * (MAX_NAME + 50))
    assert RoomEvent.decode(event.signed).name == "x" * MAX_NAME
    with pytest.raises(ValueError):
        RoomEvent.create(ADMIN, ROOM, "promote", T)


def test_decode_rejects_a_signature_by_someone_else() -> None:
    with pytest.raises(ChatError, match="bad signature"):
        RoomEvent.decode(signed(good_body(), signer=MALLORY))


def test_decode_rejects_a_tampered_body() -> None:
    event = ev(ADMIN, "invite", 1, BOB)
    body = msgpack.packb(good_body(ts=T + 1, target=MALLORY.public_key))
    with pytest.raises(ChatError, match="bad signature"):
        RoomEvent.decode(body + event.signed[-64:])


def test_decode_rejects_a_flipped_signature_byte() -> None:
    data = bytearray(ev(ADMIN, "invite", 1, BOB).signed)
    data[-1] ^= 0x01
    with pytest.raises(ChatError, match="bad signature"):
        RoomEvent.decode(bytes(data))


@pytest.mark.parametrize("size", [0, 64, MAX_EVENT_SIZE + 1])
def test_decode_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(ChatError, match="bad size"):
        RoomEvent.decode(bytes(size))


def test_decode_rejects_an_oversize_but_well_signed_event() -> None:
    data = signed(good_body(name="x" * 2000))
    assert len(data) > MAX_EVENT_SIZE
    with pytest.raises(ChatError, match="bad size"):
        RoomEvent.decode(data)


@pytest.mark.parametrize(
    "body",
    [
        good_body(version=2),
        good_body(room_id="not bytes"),
        good_body(room_id=ROOM[:31]),
        good_body(kind="promote"),
        good_body(kind=b"invite"),
        good_body(target=b"short"),
        good_body(target="x" * 32),
        good_body(ts=-1),
        good_body(ts="1700000000000"),
        good_body(ts=1.5),
        good_body(author=ADMIN.public_key[:31]),
        good_body(name=b"bytes"),
        good_body(name="x" * (MAX_NAME + 1)),
        good_body()[:6],
        [*good_body(), "extra"],
        {"kind": "invite"},
        42,
    ],
    ids=[
        "version",
        "room-type",
        "room-len",
        "kind",
        "kind-bytes",
        "target-len",
        "target-type",
        "ts-negative",
        "ts-str",
        "ts-float",
        "author-len",
        "name-type",
        "name-long",
        "too-few",
        "too-many",
        "map",
        "int",
    ],
)
def test_decode_rejects_malformed_bodies(body: Any) -> None:
    with pytest.raises(ChatError, match="malformed"):
        RoomEvent.decode(signed(body))


def test_decode_rejects_bytes_that_are_not_msgpack() -> None:
    with pytest.raises(ChatError, match="malformed"):
        RoomEvent.decode(b"\xc1" * 10 + bytes(64))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=MAX_EVENT_SIZE + 10))
def test_decode_of_random_bytes_raises_only_chat_error(data: bytes) -> None:
    with contextlib.suppress(ChatError):
        RoomEvent.decode(data)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=5) | st.integers(-100, 100), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(msgpack_values, min_size=5, max_size=8), st.binary(min_size=64, max_size=64))
def test_decode_of_random_msgpack_lists_raises_only_chat_error(
    body: list[Any], signature: bytes
) -> None:
    # structured input reaches the field checks that random bytes rarely get past
    data = msgpack.packb(body) + signature
    with contextlib.suppress(ChatError):
        RoomEvent.decode(data)
