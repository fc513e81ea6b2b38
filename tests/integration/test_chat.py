"""Chat between real nodes on loopback, each with its own home and SQLite database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat.daemon import Daemon
from mesh.errors import UsageError
from mesh.runtime.home import Home
from mesh.wire.envelope import Envelope, EnvelopeType
from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with


def history(daemon: Daemon, conversation: str) -> list[dict[str, Any]]:
    return daemon.chat.history(conversation)


def texts(daemon: Daemon, conversation: str) -> list[str]:
    return [m["text"] for m in history(daemon, conversation)]


def has(daemon: Daemon, conversation: str, text: str, status: str) -> Callable[[], bool]:
    return lambda: any(
        m["text"] == text and m["status"] == status for m in history(daemon, conversation)
    )


async def test_direct_message_crosses_a_relay_and_turns_delivered(mesh: Mesh) -> None:
    a, _b, c = await mesh.line("A", "B", "C")
    await wait_until(lambda: a.node.router.route_to(c.node.identity.public_key, a.node.clock()))
    msg_id = a.chat.send_direct(mesh.ids["C"], "hello")
    assert history(a, mesh.ids["C"])[0]["status"] == "pending"

    await wait_until(has(c, mesh.ids["A"], "hello", "received"), what="C receives it")
    await wait_until(has(a, mesh.ids["C"], "hello", "delivered"), what="C's receipt at A")
    received = history(c, mesh.ids["A"])[0]
    assert received["id"] == msg_id and received["author"] == mesh.ids["A"]
    # A is not C's contact: the conversation is a request until C adds A
    conversation = [x for x in c.chat.conversations() if x["peer_id"] == mesh.ids["A"]]
    assert conversation[0]["state"] == "request"
    c.chat.contacts.add(mesh.ids["A"], "alice")
    assert [x["state"] for x in c.chat.conversations()] == ["active"]
    c.chat.send_direct("alice", "hi alice")
    await wait_until(has(a, mesh.ids["C"], "hi alice", "received"), what="the answer at A")


async def test_a_message_reaches_a_peer_that_comes_online_after_the_sender_left(
    mesh: Mesh,
) -> None:
    await mesh.line("A", "B")
    c_home = Home(mesh.root / "C")
    c_id = c_home.create_identity("C").peer_id
    mesh["A"].chat.send_direct(c_id, "while you were away")
    b = mesh["B"]
    await wait_until(
        lambda: b.chat.status()["outbox"] == 0 and _mailbox(b) == 1, what="B keeps a copy"
    )
    await mesh.stop("A")

    c = await mesh.start("C", dial="B")  # C links only to B; A is gone
    await wait_until(has(c, mesh.ids["A"], "while you were away", "received"), what="handover")
    # C's receipt waits at B for A, and A learns of the delivery when it returns
    a = await mesh.start("A")
    await mesh.stop("B")
    b = await mesh.start("B", dial="A")
    await wait_until(
        has(a, c_id, "while you were away", "delivered"), timeout=15, what="the receipt reaching A"
    )


def _mailbox(daemon: Daemon) -> int:
    return int(daemon.node.status()["caches"]["mailbox"]["size"])


async def room_of_three(mesh: Mesh) -> str:
    await mesh.line("A", "B", "C")
    return await room_with(mesh, "A", ["B", "C"])


async def test_room_messages_reach_every_member(mesh: Mesh) -> None:
    room = await room_of_three(mesh)
    mesh["B"].chat.say(room, "bob here")
    for name in ("A", "C"):
        await wait_until(has(mesh[name], room, "bob here", "received"), what=f"{name} hears bob")
    await wait_until(has(mesh["B"], room, "bob here", "delivered"), what="both receipts")


async def test_a_removed_member_cannot_read_what_is_said_after(mesh: Mesh) -> None:
    room = await room_of_three(mesh)
    a, b, c = mesh["A"], mesh["B"], mesh["C"]
    a.chat.say(room, "before")
    for member in (b, c):
        await wait_until(has(member, room, "before", "received"), what="before, everyone")

    seen_by_b: list[Envelope] = []
    b.node.on_deliver(EnvelopeType.CHAT, seen_by_b.append)
    a.chat.rooms.remove(room, mesh.ids["C"])
    assert a.chat.rooms.state(room).epoch == 1
    await wait_until(lambda: b.chat.rooms.state(room).epoch == 1, what="B learns the removal")
    await wait_until(lambda: c.chat.rooms.state(room).epoch == 1, what="C learns it too")
    a.chat.say(room, "after")
    await wait_until(has(b, room, "after", "received"), what="B reads it")
    assert "after" not in texts(c, room)

    # hand C the very envelope B got: C holds no key of the new epoch and cannot read it
    after = [e for e in seen_by_b if e.author == a.node.identity.public_key][-1]
    c.chat._on_chat(after)
    assert "after" not in texts(c, room)
    assert c.chat.keys.chain(room, 1, mesh.ids["A"]) is None
    assert c.chat.counters.get("chat_rejected_not_member", 0) >= 1


async def test_histories_survive_restarts_and_nothing_shows_twice(mesh: Mesh) -> None:
    room = await room_of_three(mesh)
    a, b, c = mesh["A"], mesh["B"], mesh["C"]
    a.chat.say(room, "one")
    b.chat.say(room, "two")
    c.chat.send_direct(mesh.ids["A"], "private")
    await wait_until(has(c, room, "one", "received"), what="one")
    await wait_until(has(a, room, "two", "received"), what="two")
    await wait_until(has(a, mesh.ids["C"], "private", "received"), what="private")
    await wait_until(has(c, mesh.ids["A"], "private", "delivered"), what="receipt")
    before = {
        n: (history(mesh[n], room), history(mesh[n], mesh.ids["A" if n != "A" else "C"]))
        for n in "ABC"
    }

    for name in "CBA":
        await mesh.stop(name)
    await mesh.line("A", "B", "C")
    after = {
        n: (history(mesh[n], room), history(mesh[n], mesh.ids["A" if n != "A" else "C"]))
        for n in "ABC"
    }
    assert after == before
    for name in "ABC":
        ids = [m["id"] for m in history(mesh[name], room)]
        assert len(ids) == len(set(ids)) == 2
    # and talking goes on after the restart
    mesh["C"].chat.say(room, "three")
    await wait_until(has(mesh["A"], room, "three", "received"), what="three after restart")


async def test_a_message_to_a_peer_that_left_waits_in_the_mesh_after_the_sender_left(
    mesh: Mesh,
) -> None:
    """C was known and went away; A writes to it and goes too: a relay must hold the copy."""
    a, b, c = await mesh.line("A", "B", "C")
    c_key = c.node.identity.public_key

    def a_route() -> object:
        return a.node.router.route_to(c_key, a.node.clock())

    await wait_until(lambda: a_route() is not None, what="A's path to C")
    await mesh.stop("C")
    await wait_until(lambda: a_route() is None, what="A's path to C withdrawn")
    a.chat.send_direct(mesh.ids["C"], "after you left")
    await wait_until(lambda: _mailbox(b) == 1, what="B keeps a copy for C")
    await mesh.stop("A")
    c = await mesh.start("C", dial="B")
    await wait_until(has(c, mesh.ids["A"], "after you left", "received"), what="handover at B")


async def test_a_handed_over_room_takes_its_new_admins_invitations_and_keys(mesh: Mesh) -> None:
    a, b, c = await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["B"])
    c.chat.contacts.add(mesh.ids["B"])  # invitations from contacts: automatic
    a.chat.rooms.hand_over(room, mesh.ids["B"])
    await wait_until(
        lambda: b.chat.rooms.state(room).admin == b.node.identity.public_key,
        what="B learns it is the admin",
    )
    # the old admin no longer may invite; the new one does, and C joins with every key
    with pytest.raises(UsageError, match="admin"):
        a.chat.rooms.invite(room, mesh.ids["C"])
    b.chat.rooms.invite(room, mesh.ids["C"])
    for peer in (a, b, c):
        await wait_until(
            lambda p=peer: len(p.chat.rooms.state(room).members) == 3,
            what="everyone sees C join",
        )
    await wait_until(lambda: c.chat.rooms.document_key(room, 0) is not None, what="C's key")
    # the old admin is an ordinary member now, and may leave; the new admin rekeys
    a.chat.rooms.leave(room)
    await wait_until(lambda: c.chat.rooms.document_key(room, 1) is not None, what="epoch 1 key")
    assert a.node.identity.public_key in c.chat.rooms.state(room).departed
