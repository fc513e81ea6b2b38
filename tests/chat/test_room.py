"""Tests for chat.room: the authority rules of the membership fold and strict decoding of events."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.room import MAX_EVENT_SIZE, MAX_NAME, MAX_PREV, RoomEvent, RoomState, fold
from mesh.errors import ChatError
from mesh.wire.identity import Identity

ADMIN = Identity.from_seed(bytes(range(32)))
BOB = Identity.from_seed(bytes(range(32, 64)))
CAROL = Identity.from_seed(bytes(range(64, 96)))
MALLORY = Identity.from_seed(bytes(range(96, 128)))
T = 1_700_000_000_000
GENESIS = RoomEvent.genesis(ADMIN, T, "garden", bytes(range(0xA0, 0xC0)))
ROOM = GENESIS.room_id


class Log:
    """A room's events as their authors write them: each follows the heads known so far."""

    def __init__(self, *events: RoomEvent) -> None:
        self.events = [GENESIS, *events]

    def add(
        self,
        who: Identity,
        kind: str,
        target: Identity | None = None,
        ts: int = 0,
        prev: list[bytes] | None = None,
        cut: int = 0,
    ) -> RoomEvent:
        heads = fold(ROOM, self.events).heads if prev is None else prev
        tgt = target.public_key if target is not None else b""
        event = RoomEvent.make(who, ROOM, kind, T + ts, heads, target=tgt, cut=cut)
        self.events.append(event)
        return event

    def state(self) -> RoomState:
        return fold(ROOM, self.events)


def base() -> Log:
    """A room where bob is a member and carol an invitee, at epoch 0."""
    log = Log()
    log.add(ADMIN, "invite", BOB, 1)
    log.add(BOB, "join", ts=2)
    log.add(ADMIN, "invite", CAROL, 3)
    return log


def membership(state: RoomState) -> tuple[Any, ...]:
    """What the fold decides, without the bookkeeping lists."""
    return (
        state.admin,
        state.name,
        frozenset(state.members),
        frozenset(state.invited),
        frozenset(state.departed),
        tuple(sorted(state.cuts.items())),
        state.epoch,
    )


# --- the genesis binds the room to its creator ------------------------------------------


def test_the_room_id_is_the_genesis_id_and_its_author_the_admin() -> None:
    state = fold(ROOM, [GENESIS])
    assert GENESIS.event_id == ROOM
    assert state.admin == ADMIN.public_key and state.name == "garden"
    assert state.members == {ADMIN.public_key}
    assert (state.invited, state.departed, state.epoch) == (set(), set(), 0)
    assert state.heads == [ROOM]


def test_a_stranger_cannot_make_a_genesis_for_a_known_room_id() -> None:
    # the takeover seen in the field: a create with a very early timestamp
    forged = RoomEvent.genesis(MALLORY, 0, "garden", bytes(range(0xA0, 0xC0)))
    assert forged.room_id != ROOM
    log = base()
    state = fold(ROOM, [*log.events, forged])
    assert membership(state) == membership(log.state())
    assert fold(ROOM, [forged]).admin is None


def test_nothing_counts_in_a_room_whose_genesis_is_missing() -> None:
    log = base()
    state = fold(ROOM, log.events[1:])
    assert state.admin is None and state.members == set()
    assert not state.known
    assert len(state.waiting) == 3


def test_events_that_follow_unknown_events_wait_for_them() -> None:
    log = base()
    join = log.add(CAROL, "join", ts=4)
    state = fold(ROOM, [GENESIS, join])  # the invitation has not arrived
    assert CAROL.public_key not in state.members
    assert state.waiting == [join]
    assert CAROL.public_key in log.state().members


# --- powers -------------------------------------------------------------------------------


def test_the_admin_invites_and_the_invitee_joins() -> None:
    state = base().state()
    assert state.members == {ADMIN.public_key, BOB.public_key}
    assert state.invited == {CAROL.public_key}
    assert state.epoch == 0


def test_only_the_admin_can_invite() -> None:
    log = base()
    by_member = log.add(BOB, "invite", MALLORY, 10)
    by_stranger = log.add(MALLORY, "invite", MALLORY, 11)
    state = log.state()
    assert MALLORY.public_key not in state.invited
    assert {e.event_id for e in state.powerless} == {by_member.event_id, by_stranger.event_id}


def test_a_join_without_an_invite_is_refused() -> None:
    log = base()
    log.add(MALLORY, "join", ts=10)
    assert MALLORY.public_key not in log.state().members


def test_removing_a_member_starts_a_new_epoch_and_records_its_cut() -> None:
    log = base()
    log.add(ADMIN, "remove", BOB, 10, cut=7)
    state = log.state()
    assert state.members == {ADMIN.public_key}
    assert state.departed == {BOB.public_key}
    assert state.epoch == 1
    assert state.cuts == {BOB.public_key: 7}
    assert state.counts(BOB.public_key, 7) and not state.counts(BOB.public_key, 8)
    assert state.counts(ADMIN.public_key, 10**6)
    assert not state.counts(MALLORY.public_key, 1)


def test_removing_an_invitee_does_not_start_a_new_epoch() -> None:
    log = base()
    log.add(ADMIN, "remove", CAROL, 10)
    state = log.state()
    assert state.invited == set() and state.departed == {CAROL.public_key}
    assert state.epoch == 0
    log.add(CAROL, "join", ts=11)
    assert CAROL.public_key not in log.state().members


def test_only_the_admin_can_remove() -> None:
    log = base()
    log.add(CAROL, "join", ts=4)
    log.add(BOB, "remove", CAROL, 10)
    state = log.state()
    assert CAROL.public_key in state.members and state.epoch == 0


def test_leaving_starts_a_new_epoch() -> None:
    log = base()
    log.add(BOB, "leave", ts=10, cut=3)
    state = log.state()
    assert state.members == {ADMIN.public_key}
    assert state.departed == {BOB.public_key} and state.cuts == {BOB.public_key: 3}
    assert state.epoch == 1


def test_an_invitee_cannot_leave() -> None:
    log = base()
    log.add(CAROL, "leave", ts=10)
    state = log.state()
    assert state.invited == {CAROL.public_key} and state.epoch == 0


def test_every_departure_counts_an_epoch() -> None:
    log = base()
    log.add(CAROL, "join", ts=4)
    log.add(BOB, "leave", ts=10)
    log.add(ADMIN, "remove", CAROL, 11)
    assert log.state().epoch == 2


def test_the_admin_cannot_be_removed_or_leave() -> None:
    log = base()
    log.add(ADMIN, "remove", ADMIN, 10)
    log.add(ADMIN, "leave", ts=11)
    state = log.state()
    assert state.admin == ADMIN.public_key and ADMIN.public_key in state.members
    assert state.epoch == 0


def test_a_departed_member_can_be_invited_back() -> None:
    log = base()
    log.add(ADMIN, "remove", BOB, 10)
    log.add(ADMIN, "invite", BOB, 11)
    log.add(BOB, "join", ts=12)
    state = log.state()
    assert BOB.public_key in state.members
    assert state.departed == set() and state.cuts == {}
    assert state.epoch == 1  # rejoining does not undo the departure's epoch


def test_the_admin_hands_the_room_over_explicitly() -> None:
    log = base()
    log.add(ADMIN, "admin", BOB, 10)
    log.add(ADMIN, "invite", MALLORY, 11)  # no longer the admin's to do
    log.add(BOB, "invite", MALLORY, 12)
    log.add(ADMIN, "leave", ts=13)  # an ordinary member now, free to leave
    state = log.state()
    assert state.admin == BOB.public_key
    assert state.invited == {CAROL.public_key, MALLORY.public_key}
    assert state.departed == {ADMIN.public_key} and state.epoch == 1


def test_the_room_can_only_go_to_a_member() -> None:
    log = base()
    log.add(ADMIN, "admin", CAROL, 10)  # an invitee
    log.add(ADMIN, "admin", MALLORY, 11)  # a stranger
    assert log.state().admin == ADMIN.public_key


# --- timestamps and concurrency -------------------------------------------------------------


def test_a_timestamp_never_grants_power() -> None:
    log = base()
    head = log.state().heads
    log.add(ADMIN, "remove", BOB, 10, cut=5)
    # bob, removed, writes a leave stamped long before, naming only what came before
    # the removal, with a cut that would keep its later edits
    log.add(BOB, "leave", ts=-(10**9), prev=head, cut=10**9)
    state = log.state()
    assert state.departed == {BOB.public_key}
    assert state.cuts == {BOB.public_key: 5}
    assert state.epoch == 1


def test_an_event_counts_only_if_its_author_had_the_power_in_its_own_past() -> None:
    log = base()
    head = log.state().heads
    # mallory joins naming only events before any invitation of hers ...
    join = log.add(MALLORY, "join", ts=20, prev=head)
    # ... and is invited afterwards, concurrently: her join does not count
    log.add(ADMIN, "invite", MALLORY, 10)
    state = log.state()
    assert MALLORY.public_key in state.invited and MALLORY.public_key not in state.members
    assert join in state.powerless


def test_a_concurrent_hand_over_and_removal_resolve_the_same_everywhere() -> None:
    log = base()
    log.add(CAROL, "join", ts=4)
    head = log.state().heads
    log.add(ADMIN, "admin", BOB, 10, prev=head)
    log.add(BOB, "remove", CAROL, 11)  # the new admin, after the hand-over
    log.add(ADMIN, "remove", BOB, 9, prev=head)  # the old admin, concurrently
    states = {
        membership(fold(ROOM, random.Random(i).sample(log.events, len(log.events))))
        for i in range(20)
    }
    assert len(states) == 1


def test_duplicate_events_are_harmless() -> None:
    log = base()
    log.add(CAROL, "join", ts=4)
    log.add(BOB, "leave", ts=10)
    log.add(ADMIN, "remove", CAROL, 11)
    events = log.events
    state = fold(ROOM, events + events + events[::-1])
    assert membership(state) == membership(log.state())
    assert state.epoch == 2


def test_events_of_another_room_are_ignored() -> None:
    other = RoomEvent.genesis(ADMIN, T, "elsewhere", bytes(32))
    foreign = RoomEvent.make(
        ADMIN, other.room_id, "invite", T + 5, [other.room_id], target=MALLORY.public_key
    )
    log = base()
    assert membership(fold(ROOM, [*log.events, other, foreign])) == membership(log.state())
    assert fold(other.room_id, log.events).admin is None


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.randoms(use_true_random=False))
def test_fold_converges_whatever_the_arrival_order(rng: random.Random) -> None:
    log = base()
    log.add(CAROL, "join", ts=4)
    head = log.state().heads
    log.add(BOB, "leave", ts=10)
    log.add(ADMIN, "invite", MALLORY, 11, prev=head)  # concurrent with bob's leave
    log.add(MALLORY, "join", ts=12)
    log.add(ADMIN, "remove", CAROL, 13, prev=head)
    log.add(CAROL, "leave", ts=13, prev=head, cut=4)  # concurrent with her removal
    log.add(ADMIN, "invite", BOB, 14)
    log.add(BOB, "join", ts=15)
    shuffled = log.events[:]
    rng.shuffle(shuffled)
    assert membership(fold(ROOM, shuffled)) == membership(log.state())


# --- encoding and decoding -----------------------------------------------------------


def signed(body: Any, signer: Identity = ADMIN) -> bytes:
    packed: bytes = msgpack.packb(body)
    return packed + signer.sign(packed)


def good_body(**changes: Any) -> list[Any]:
    fields = {
        "version": 2,
        "room_id": ROOM,
        "kind": "invite",
        "target": BOB.public_key,
        "ts": T,
        "author": ADMIN.public_key,
        "name": "",
        "prev": [ROOM],
        "cut": 0,
    }
    fields.update(changes)
    return list(fields.values())


def ev(who: Identity, kind: str, ts: int, target: Identity | None = None) -> RoomEvent:
    tgt = target.public_key if target is not None else b""
    return RoomEvent.make(who, ROOM, kind, T + ts, [ROOM], target=tgt)


def test_decode_returns_what_make_made() -> None:
    event = ev(ADMIN, "invite", 1, BOB)
    decoded = RoomEvent.decode(event.signed)
    assert decoded == event
    assert decoded.event_id == event.event_id
    assert RoomEvent.decode(signed(good_body())).target == BOB.public_key


def test_genesis_truncates_long_names_and_make_refuses_unknown_kinds() -> None:
    event = RoomEvent.genesis(ADMIN, T, "x" * (MAX_NAME + 50), bytes(32))
    assert RoomEvent.decode(event.signed).name == "x" * MAX_NAME
    with pytest.raises(ValueError):
        RoomEvent.make(ADMIN, ROOM, "promote", T, [ROOM])
    with pytest.raises(ValueError):
        RoomEvent.make(ADMIN, ROOM, "create", T, [ROOM])
    with pytest.raises(ValueError):
        RoomEvent.make(ADMIN, ROOM, "invite", T, [], target=BOB.public_key)


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
    data = signed(good_body(kind="create", room_id=b"", prev=[], name="x" * 2000))
    assert len(data) > MAX_EVENT_SIZE
    with pytest.raises(ChatError, match="bad size"):
        RoomEvent.decode(data)


@pytest.mark.parametrize(
    "body",
    [
        good_body(version=1),
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
        good_body(name="named"),
        good_body(prev=[]),
        good_body(prev=[ROOM[:31]]),
        good_body(prev=[ROOM, ROOM]),
        good_body(prev=sorted([bytes([i]) * 32 for i in range(MAX_PREV + 1)])),
        good_body(prev=[bytes([2]) * 32, bytes([1]) * 32]),
        good_body(cut=5),
        good_body(cut=-1),
        good_body(kind="join"),
        good_body(kind="create", room_id=b"", prev=[]),
        good_body(kind="create", room_id=b"", target=bytes(32), prev=[], name=""),
        good_body(kind="create", room_id=ROOM, target=bytes(32), prev=[], name="x"),
        good_body()[:8],
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
        "name-on-invite",
        "no-prev",
        "prev-len",
        "prev-repeated",
        "prev-too-many",
        "prev-unsorted",
        "cut-on-invite",
        "cut-negative",
        "join-with-target",
        "create-without-nonce",
        "create-without-name",
        "create-with-room",
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
