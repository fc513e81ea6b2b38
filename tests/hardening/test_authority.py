"""Issue 17, holes 1-3: who may change a room and write its notes, tried by hostile peers.

Real daemons on loopback. The attackers are built on the project's own code:
a :class:`HostileLink` (a stranger who only knows a room id, as every relay
does) and full daemons that bypass their own checks to write what an honest
peer would not.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pycrdt
import pytest

from chat.daemon import Daemon
from chat.pairwise import box
from chat.room import RoomEvent
from crdt import payload
from mesh.wire.envelope import DestKind, EnvelopeType
from mesh.wire.identity import Identity, decode_peer_id, encode_peer_id
from sim.hostile import HostileLink, befriend, linked, notes_of, start_daemon
from tests.conftest import wait_until


@dataclass
class Room:
    """A room made by `admin`, with every other daemon a member, and one note in it."""

    admin: Daemon
    members: list[Daemon]
    conv_id: str
    note_id: str

    @property
    def room_id(self) -> bytes:
        return decode_peer_id(self.conv_id)


async def make_room(name: str, admin: Daemon, *members: Daemon) -> Room:
    conv_id = admin.chat.rooms.new(name)
    for member in members:
        admin.chat.rooms.invite(conv_id, member.node.identity.peer_id)
    for member in members:
        await wait_until(
            lambda m=member: m.chat.rooms.document_key(conv_id, 0) is not None,
            what=f"{member.node.identity.name} joined {name} and holds its key",
        )
    note_id = notes_of(admin).new(conv_id, f"{name} plan")
    notes_of(admin).append(note_id, "agreed")
    notes_of(admin).flush(note_id)
    for member in members:
        await wait_until(
            lambda m=member: "agreed" in _text(m, note_id), what=f"the {name} note at a member"
        )
    return Room(admin, list(members), conv_id, note_id)


def _text(daemon: Daemon, note_id: str) -> str:
    try:
        return notes_of(daemon).cat(note_id)
    except Exception:
        return ""


def chat_counter(daemon: Daemon, name: str) -> int:
    return daemon.chat.counters.get(name, 0)


def notes_counter(daemon: Daemon, name: str) -> int:
    return int(notes_of(daemon).counters.get(name, 0))


def update_appending(text: str, client_id: int) -> bytes:
    """A pycrdt update that writes `text` into a note body, from a client of its own."""
    doc: pycrdt.Doc[object] = pycrdt.Doc(client_id=client_id)
    body = doc.get("body", type=pycrdt.Text)
    body += text
    return bytes(doc.get_update())


def send_note_update(
    attacker: Daemon, room: bytes, note: bytes, epoch: int, seq: int, update: bytes
) -> None:
    """A NOTE envelope sealed with a document key the attacker holds, sent as its own."""
    conv_id = encode_peer_id(room)
    key = attacker.chat.rooms.document_key(conv_id, epoch)
    assert key is not None
    me = attacker.node.identity.public_key
    envelope = attacker.node.router.make(
        EnvelopeType.NOTE,
        attacker.node.clock(),
        dest_kind=DestKind.ROOM,
        dest=room,
        payload=payload.seal_payload(key, room, note, epoch, me, seq, update),
        seq=seq,
    )
    attacker.node.send(envelope)


@pytest.fixture
async def trio(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon, Daemon]]:
    """Three daemons: a in the middle, b and m dialing it; all three know each other."""
    a = await start_daemon(tmp_path, "alice")
    assert a.node.address is not None
    b = await start_daemon(tmp_path, "bob", dial=[a.node.address])
    m = await start_daemon(tmp_path, "mallory", dial=[a.node.address])
    await wait_until(lambda: linked(a, b) and linked(a, m), what="links to a")
    for x, y in ((a, b), (a, m), (b, m)):
        await befriend(x, y)
    yield a, b, m
    for daemon in (m, b, a):
        await daemon.stop()


# -- hole 1: a stranger who learns a room id takes the room -----------------------------------


async def test_a_stranger_who_knows_a_room_id_cannot_take_the_room(
    trio: tuple[Daemon, Daemon, Daemon],
) -> None:
    a, b, _ = trio
    room = await make_room("garden", a, b)
    before = b.chat.rooms.all()
    stranger = HostileLink(Identity.generate("stranger"))
    assert a.node.address is not None
    await stranger.open(a.node.address)
    me, target = stranger.identity, b.node.identity.public_key
    now = time.time()
    early = 1  # the field report's "very early timestamp"
    genesis = RoomEvent.genesis(me, early, "garden", bytes(32))
    bodies = [
        # a create for the room's id, stamped first
        {"k": "event", "room": room.room_id, "event": genesis.signed},
        # a stranger's invite of itself, and a hand-over to itself, naming the real genesis
        {
            "k": "event",
            "room": room.room_id,
            "event": RoomEvent.make(
                me, room.room_id, "invite", early, [room.room_id], target=me.public_key
            ).signed,
        },
        {
            "k": "event",
            "room": room.room_id,
            "event": RoomEvent.make(
                me, room.room_id, "admin", early, [room.room_id], target=me.public_key
            ).signed,
        },
        # an invitation naming itself admin of a room with that id
        {"k": "invite", "room": room.room_id, "events": [genesis.signed]},
        # document keys of a new epoch, as only the admin sends
        {"k": "dockeys", "room": room.room_id, "keys": [[1, bytes(32)]]},
    ]
    envelopes = [
        stranger.envelope(
            EnvelopeType.CONTROL,
            now + i * 0.001,
            dest=target,
            payload=box(me, target, msgpack.packb(body)),
            seq=i + 1,
        ).encode()
        for i, body in enumerate(bodies)
    ]
    await stranger.send(*envelopes)
    await wait_until(
        lambda: (
            sum(
                chat_counter(b, f"control_rejected_{r}")
                for r in ("no_power", "malformed", "not_admin", "unknown_room")
            )
            >= len(bodies)
        ),
        what="every forged event refused and counted at b",
    )
    assert chat_counter(b, "control_rejected_no_power") >= 2
    assert chat_counter(b, "control_rejected_unknown_room") >= 1  # the invitation
    assert chat_counter(b, "control_rejected_not_admin") >= 1  # the document keys
    # nothing changed: the admin, the members, the epoch, the keys
    assert b.chat.rooms.all() == before
    state = b.chat.rooms.state(room.conv_id)
    assert state.admin == a.node.identity.public_key
    assert state.members == {a.node.identity.public_key, b.node.identity.public_key}
    assert b.chat.rooms.document_key(room.conv_id, 1) is None
    # and the room still works between its members
    a.chat.say(room.conv_id, "still ours")
    await wait_until(
        lambda: any(m["text"] == "still ours" for m in b.chat.history(room.conv_id)),
        what="a room message after the attack",
    )
    await stranger.close()


# -- hole 2: a member of one room writes a note of another -------------------------------------


async def test_a_note_of_one_room_cannot_be_written_through_another(
    trio: tuple[Daemon, Daemon, Daemon],
) -> None:
    a, b, m = trio
    shared = await make_room("shared", a, b, m)  # mallory is a member here ...
    private = await make_room("private", a, b)  # ... and not here
    target = decode_peer_id(private.note_id)
    before = notes_counter(b, "notes_rejected_wrong_room")
    # mallory learned the private note's id (it travels in clear) and writes it through
    # the room it belongs to, sealed with that room's key
    send_note_update(m, shared.room_id, target, 0, 1000, update_appending("mallory was here", 4242))
    await wait_until(
        lambda: notes_counter(b, "notes_rejected_wrong_room") > before,
        what="the cross-room update refused at b",
    )
    assert _text(b, private.note_id) == _text(a, private.note_id)
    assert "mallory" not in _text(b, private.note_id)
    # the room's own notes still take updates
    notes_of(a).append(private.note_id, "still fine")
    notes_of(a).flush(private.note_id)
    await wait_until(lambda: "still fine" in _text(b, private.note_id), what="a later edit")
    assert "mallory" not in _text(b, private.note_id)


# -- hole 3: a removed member keeps writing with its old document key --------------------------


async def test_a_removed_member_cannot_write_notes_after_its_removal(
    trio: tuple[Daemon, Daemon, Daemon],
) -> None:
    a, b, m = trio
    room = await make_room("team", a, b, m)
    # mallory's edit while a member counts, and stays
    notes_of(m).append(room.note_id, "from mallory, as a member")
    notes_of(m).flush(room.note_id)
    await wait_until(lambda: "as a member" in _text(b, room.note_id), what="mallory's edit")
    await wait_until(
        lambda: (
            a.node.roomlog is not None
            and a.node.roomlog.vector(room.room_id).get(m.node.identity.public_key, 0) >= 1
        ),
        what="mallory's envelopes in a's room log",
    )
    a.chat.rooms.remove(room.conv_id, m.node.identity.peer_id)
    await wait_until(
        lambda: m.node.identity.public_key in b.chat.rooms.state(room.conv_id).departed,
        what="b learns of the removal",
    )
    cut = b.chat.rooms.state(room.conv_id).cuts[m.node.identity.public_key]
    assert cut >= 1
    before = notes_counter(b, "notes_rejected_after_removal")
    # mallory, removed, still holds the epoch-0 document key and writes on
    send_note_update(
        m,
        room.room_id,
        decode_peer_id(room.note_id),
        0,
        cut + 1,
        update_appending("written after removal", 777),
    )
    await wait_until(
        lambda: notes_counter(b, "notes_rejected_after_removal") > before,
        what="the late update refused at b",
    )
    await wait_until(
        lambda: notes_counter(a, "notes_rejected_after_removal") >= 1,
        what="the late update refused at a",
    )
    for member in (a, b):
        text = _text(member, room.note_id)
        assert "as a member" in text and "after removal" not in text
