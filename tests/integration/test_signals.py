"""Ephemeral signals across a relay: typing notices and cursors reach people, and nothing is kept.

A - B - C on loopback; B only relays. Signals are sealed end to end (B opens
none), kept nowhere (no mailbox, no room log), dropped when stale, when over
their author's budget, or when no path leads on, and counted for each.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pycrdt
import pytest
from websockets.asyncio.client import connect

from chat import pairwise
from chat.readstate import read_by
from chat.signals import MAX_AGE
from crdt.awareness import MAX_CLIENTS, _encode, _entries, colour_of, sticky, unstick
from crdt.notes import Notes
from mesh.routing import signals as gate
from mesh.wire.envelope import DestKind, EnvelopeType, wire_type
from mesh.wire.identity import Identity, decode_peer_id
from tests.crdt.test_bridge import AWARENESS, STEP1, SYNC, next_of_type
from tests.integration.harness import Mesh, room_with
from tests.waiting import wait_until


def heard(mesh: Mesh, name: str, kind: str) -> list[dict[str, Any]]:
    """What the listeners of `name`'s chat (and notes) layer hear of `kind`, from now on."""
    events: list[dict[str, Any]] = []
    mesh[name].chat.listeners.append(lambda k, d: events.append(d) if k == kind else None)
    notes = mesh.notes_of(name)
    notes.listeners.append(lambda k, d: events.append(d) if k == kind else None)
    return events


def counters(mesh: Mesh, name: str) -> dict[str, int]:
    return dict(mesh[name].status()["counters"])


def stored_signals(mesh: Mesh, name: str) -> int:
    """SIGNAL envelopes in a node's mailbox, room log and pending table (there must be none)."""
    store = mesh[name].store
    assert store is not None
    blobs = [
        bytes(row["envelope"])
        for table in ("mailbox", "room_log", "pending")
        for row in store.query(f"SELECT envelope FROM {table}")
    ]
    return sum(1 for blob in blobs if wire_type(blob) == EnvelopeType.SIGNAL)


def has_note(notes: Notes, note_id: str, text: str) -> bool:
    return note_id in {n["note_id"] for n in notes.all()} and notes.cat(note_id) == text


@pytest.fixture
async def line(mesh: Mesh) -> Mesh:
    await mesh.line("A", "B", "C")
    mesh["A"].chat.contacts.add(mesh.ids["C"], "carol")
    mesh["C"].chat.contacts.add(mesh.ids["A"], "alice")
    await wait_until(
        lambda: (
            mesh["A"].chat.contacts.reachable(mesh.ids["C"])
            and mesh["C"].chat.contacts.reachable(mesh.ids["A"])
        ),
        what="A and C reach each other through B",
    )
    return mesh


async def test_a_typing_notice_crosses_the_relay_in_a_dm_and_in_a_room(line: Mesh) -> None:
    mesh = line
    typing_at_c = heard(mesh, "C", "typing")
    assert mesh["A"].typing is not None and mesh["C"].typing is not None
    dm = mesh["A"].chat.direct_conversation("carol")
    assert mesh["A"].typing.typed(dm)
    assert not mesh["A"].typing.typed(dm), "a second notice within SEND_EVERY goes nowhere"
    await wait_until(lambda: typing_at_c, what="C hears that A types in their DM")
    assert typing_at_c[0] == {"conv_id": dm, "peer_id": mesh.ids["A"]}
    assert mesh["C"].typing.who(dm) == [mesh.ids["A"]]

    room = await room_with(mesh, "A", ["C"])
    assert mesh["A"].typing.typed(room)
    await wait_until(lambda: len(typing_at_c) == 2, what="C hears that A types in the room")
    assert typing_at_c[1] == {"conv_id": room, "peer_id": mesh.ids["A"]}
    # A's message ends the notice at once
    mesh["A"].chat.say(room, "done typing")
    await wait_until(lambda: mesh["C"].typing.who(room) == [], what="the notice ends")

    # the relay passed them on, opened none, kept none
    relay = counters(mesh, "B")
    assert relay.get("signals_received", 0) == 0
    assert relay.get("signals_dropped_not_ours", 0) >= 1  # the room one, delivered to all
    assert relay.get("signals_dropped_bad_box", 0) == 0
    assert all(stored_signals(mesh, name) == 0 for name in "ABC")
    assert counters(mesh, "C")["signals_received"] >= 2


async def test_signals_over_their_authors_budget_are_dropped_at_the_relay(line: Mesh) -> None:
    mesh = line
    a, c = mesh["A"], mesh["C"]
    c_key = c.node.identity.public_key
    burst = int(gate.BURST) + 10
    for _ in range(burst):  # past the author's budget at the relay
        assert a.signals.to_peer(c_key, "typing", {})
    await wait_until(
        lambda: counters(mesh, "B").get("dropped_signal_rate", 0) >= 1,
        what="B drops what is over A's budget",
    )
    assert counters(mesh, "B")["dropped_signal_rate"] <= burst - int(gate.BURST) + 1


async def test_a_stale_signal_is_dropped_and_one_with_no_path_is_not_held(line: Mesh) -> None:
    mesh = line
    a, c = mesh["A"], mesh["C"]
    c_key = c.node.identity.public_key
    # a stale one: made as if long ago (the node's clock, as seen by the signal's maker)
    before = counters(mesh, "C").get("signals_dropped_stale", 0)
    real_clock = a.node.clock
    a.node.clock = lambda: real_clock() - MAX_AGE - 5  # type: ignore[method-assign]
    try:
        payload = a.signals._plaintext("typing", {})
    finally:
        a.node.clock = real_clock  # type: ignore[method-assign]
    from chat import pairwise

    envelope = a.node.router.make(
        EnvelopeType.SIGNAL,
        a.node.clock(),
        dest_kind=DestKind.PEER,
        dest=c_key,
        payload=pairwise.box(a.node.identity, c_key, payload),
        hop_limit=8,
    )
    a.node.send(envelope)
    await wait_until(
        lambda: counters(mesh, "C").get("signals_dropped_stale", 0) == before + 1,
        what="C drops the stale signal",
    )

    # no path: C goes away; B holds nothing for it, not even in its parking lot
    await mesh.stop("C")
    await wait_until(
        lambda: mesh["B"].node.router.route_to(c_key, mesh["B"].node.clock()) is None,
        what="B has no path to C",
    )
    b_before = counters(mesh, "B").get("dropped_signal_no_path", 0)
    sent = a.signals.to_peer(c_key, "typing", {})
    if sent:  # A may still hold a path through B for a moment: then B drops it
        await wait_until(
            lambda: counters(mesh, "B").get("dropped_signal_no_path", 0) == b_before + 1,
            what="B drops a signal it has no path for",
        )
    assert mesh["B"].status()["caches"]["parked"]["size"] == 0
    assert stored_signals(mesh, "B") == 0


async def test_a_cursor_crosses_the_relay_and_a_member_cannot_move_anothers(
    line: Mesh,
) -> None:
    mesh = line
    room = await room_with(mesh, "A", ["C"])
    notes_a, notes_c = mesh.notes_of("A"), mesh.notes_of("C")
    note_id = notes_a.new(room, "plan")
    notes_a.append(note_id, "hello world")
    await wait_until(
        lambda: (
            note_id in {n["note_id"] for n in notes_c.all()}
            and notes_c.cat(note_id) == "hello world"
        ),
        what="C has the note",
    )
    cursors_at_c = heard(mesh, "C", "cursor")
    cursors_a, cursors_c = mesh.notes["A"].cursors, mesh.notes["C"].cursors
    assert cursors_a is not None and cursors_c is not None
    cursors_a.set_cursor(note_id, 6)
    await wait_until(lambda: cursors_at_c, what="C sees A's cursor")
    assert cursors_at_c[-1] == {
        "note_id": note_id,
        "peer_id": mesh.ids["A"],
        "name": "alice",  # the name C knows A by
        "color": colour_of(mesh.ids["A"]),
        "index": 6,
    }
    # the cursor sticks to its text: C inserts before it, and it moves along
    notes_c.get(note_id).insert(0, ">> ")
    state = cursors_c.awareness(note_id).states[cursors_a.awareness(note_id).client_id]
    assert unstick(notes_c.get(note_id), state["cursor"]["head"]) == 9

    # C claims A's client id: A keeps A's cursor, and counts the attempt
    forged = _encode(
        [(cursors_a.awareness(note_id).client_id, 99, '{"user":{"name":"not alice"}}')]
    )
    before = counters(mesh, "A").get("awareness_dropped_foreign", 0)
    mesh["C"].signals.to_room(room, "awareness", {"note": note_id, "update": forged})
    await wait_until(
        lambda: counters(mesh, "A").get("awareness_dropped_foreign", 0) == before + 1,
        what="A drops C's claim on A's cursor",
    )
    assert cursors_a.awareness(note_id).get_local_state()["user"]["name"] == "A"

    # a cursor gone: C hears index None
    cursors_a.clear_cursor(note_id)
    await wait_until(
        lambda: cursors_at_c[-1]["index"] is None and len(cursors_at_c) >= 2,
        what="C sees A's cursor go",
    )


async def note_behind_a_bridge(mesh: Mesh) -> str:
    """A (with the Yjs bridge) - B - C; a note "hello world" of A's room, which C holds too."""
    await mesh.start("A", bridge=True)
    await mesh.start("B", dial="A")
    await mesh.start("C", dial="B")
    mesh["C"].chat.contacts.add(mesh.ids["A"], "alice")
    room = await room_with(mesh, "A", ["C"])
    note_id = mesh.notes_of("A").new(room, "plan")
    mesh.notes_of("A").append(note_id, "hello world")
    notes_c = mesh.notes_of("C")
    await wait_until(lambda: has_note(notes_c, note_id, "hello world"), what="C has the note")
    return note_id


async def test_bridge_clients_and_mesh_peers_see_each_others_cursors(mesh: Mesh) -> None:
    note_id = await note_behind_a_bridge(mesh)
    notes_a = mesh.notes_of("A")
    cursors_at_c = heard(mesh, "C", "cursor")
    bridge = mesh.notes["A"].bridge
    assert bridge is not None
    async with connect(f"{bridge.url}/{note_id}?token={bridge.token}") as editor:
        assert (await next_of_type(editor, SYNC))[1] == STEP1
        # the editor (a y-websocket client of A's bridge) puts its cursor after "hello"
        position = sticky(notes_a.get(note_id), 5)
        state = {"user": {"name": "editor"}, "cursor": {"anchor": position, "head": position}}
        await editor.send(pycrdt.create_awareness_message(_encode([(4242, 1, json.dumps(state))])))
        await wait_until(lambda: cursors_at_c, what="C sees the bridge client's cursor")
        assert (cursors_at_c[-1]["peer_id"], cursors_at_c[-1]["index"]) == (mesh.ids["A"], 5)
        # and C's cursor reaches the editor, as a y-websocket awareness message
        cursors_c = mesh.notes["C"].cursors
        assert cursors_c is not None
        cursors_c.set_cursor(note_id, 11)
        while True:
            message = await next_of_type(editor, AWARENESS)
            entries = _entries(pycrdt.read_message(message[1:]))
            states = {client: json.loads(text) for client, _, text in entries if text}
            theirs = states.get(cursors_c.awareness(note_id).client_id)
            if theirs is not None:
                break
        assert theirs["user"] == {"name": "C", "color": colour_of(mesh.ids["C"])}
        assert unstick(notes_a.get(note_id), theirs["cursor"]["head"]) == 11
    # the editor goes away: so does its cursor, at C too
    await wait_until(
        lambda: cursors_at_c[-1]["index"] is None, what="C sees the editor's cursor go"
    )


async def test_read_state_reaches_the_room_and_the_setting_turns_it_off(mesh: Mesh) -> None:
    await mesh.line("A", "B")
    (mesh.root / "C").mkdir()
    (mesh.root / "C" / "meshnotes.toml").write_text("read_state = false\n")
    await mesh.start("C", dial="B")
    assert mesh["C"].read_state is not None and not mesh["C"].read_state.enabled
    mesh["B"].chat.contacts.add(mesh.ids["A"])  # B joins A's room too: three members
    room = await room_with(mesh, "A", ["B", "C"])
    read_at_a = heard(mesh, "A", "read_by")
    message_id = mesh["A"].chat.say(room, "please read this")
    for name in "BC":
        await wait_until(
            lambda n=name: len(mesh[n].chat.history(room)) == 1, what=f"{name} has the message"
        )
        mesh[name].chat.mark_read(room)
    await wait_until(lambda: read_at_a, what="A hears that B read it")
    assert read_at_a == [{"conv_id": room, "peer_id": mesh.ids["B"], "upto": message_id}]
    assert read_by(mesh["A"].store, room) == {mesh.ids["B"]: message_id}
    assert counters(mesh, "C").get("signals_sent", 0) == 0  # C told nobody


async def test_signals_that_would_cost_the_receiver_are_dropped_unopened(line: Mesh) -> None:
    mesh = line
    room = await room_with(mesh, "A", ["C"])
    a, c = mesh["A"], mesh["C"]
    before = counters(mesh, "C").get("signals_dropped_malformed", 0)
    # a room signal whose "box" is a number: opening it would allocate that many bytes
    huge = msgpack.packb([a_room(room), 0, 2**40])
    a.signals._send(DestKind.ROOM, a_room(room), huge)
    # a peer signal whose timestamp is not a number
    boxed = pairwise.box(
        a.node.identity, c.node.identity.public_key, msgpack.packb(["typing", "soon", {}])
    )
    a.signals._send(DestKind.PEER, c.node.identity.public_key, boxed)
    await wait_until(
        lambda: counters(mesh, "C").get("signals_dropped_malformed", 0) == before + 2,
        what="C drops both as malformed",
    )
    # a stranger's typing notice: no conversation, no contact: nothing is kept of it
    await mesh.start("D", dial="C")
    d_key = mesh["D"].node.identity.public_key
    await wait_until(
        lambda: (
            mesh["D"].node.router.route_to(c.node.identity.public_key, mesh["D"].node.clock())
            is not None
        ),
        what="D reaches C",
    )
    mesh["D"].signals._send(
        DestKind.PEER,
        c.node.identity.public_key,
        pairwise.box(mesh["D"].node.identity, c.node.identity.public_key, b"x"),
    )
    await wait_until(
        lambda: counters(mesh, "C").get("signals_dropped_stranger", 0) == 1,
        what="C drops the stranger's signal",
    )
    assert d_key not in {k for k in c.chat.contacts.blocked()}


def a_room(room_id: str) -> bytes:
    return decode_peer_id(room_id)


async def test_awareness_past_an_authors_client_budget_or_nested_too_deep_is_refused(
    mesh: Mesh,
) -> None:
    await mesh.start("A")
    cursors = mesh.notes["A"].cursors
    assert cursors is not None
    stranger = Identity.generate("mallory").public_key
    many = [(client, 1, "null") for client in range(1000, 1000 + MAX_CLIENTS + 50)]
    kept = cursors._claimed("note", _encode(many), stranger)
    assert len(kept) == MAX_CLIENTS
    assert counters(mesh, "A")["awareness_dropped_too_many"] == 50
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(ValueError, match="too deep"):
        _entries(_encode([(1, 1, '{"a": ' + deep + "}")]))
