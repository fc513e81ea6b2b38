"""Search, edits, deletes, replies, reactions, unread and mentions between real nodes.

Every test runs over a line A - B - C on loopback: what A does reaches C
through B. Offline catch-up stops a member, acts, and starts it again: the
changes come through mailboxes and room logs like any message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chat.daemon import Daemon
from tests.integration.harness import Mesh, room_with
from tests.integration.test_names import cli
from tests.waiting import wait_until


def shown(daemon: Daemon, conversation: str, msg_id: str) -> dict[str, Any] | None:
    return next((m for m in daemon.chat.history(conversation) if m["id"] == msg_id), None)


def has(daemon: Daemon, conversation: str, msg_id: str, **expected: Any) -> Any:
    def check() -> bool:
        m = shown(daemon, conversation, msg_id)
        return m is not None and all(m[k] == v for k, v in expected.items())

    return check


async def test_edits_deletes_reactions_and_replies_cross_a_relay_in_a_room(mesh: Mesh) -> None:
    await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["B", "C"])
    a, b, c = mesh["A"], mesh["B"], mesh["C"]
    msg = a.chat.say(room, "meet at 5")
    await wait_until(has(c, room, msg, text="meet at 5"), what="C reads it")
    a.chat.edit(msg, "meet at 6")
    c.chat.react(msg, "👍")
    b.chat.react(msg, "👍")
    answer = c.chat.reply(msg, "ok")
    for member in (a, b, c):
        await wait_until(
            has(member, room, msg, text="meet at 6", edited=True, reactions={"👍": 2}),
            what="the edit and both reactions everywhere",
        )
        await wait_until(has(member, room, answer, reply_to=msg), what="the reply everywhere")
    assert shown(a, room, answer)["quote"]["text"] == "meet at 6"  # type: ignore[index]
    a.chat.delete(msg)
    for member in (a, b, c):
        await wait_until(
            has(member, room, msg, deleted=True, text="", reactions={}), what="the delete"
        )
        assert member.chat.search("meet") == []
    # B may not edit A's message: its node refuses, and a forged one is refused at C
    b.chat._send_to(room, "edit", "forged", answer)
    await wait_until(
        lambda: c.chat.counters.get("chat_refused_not_author", 0) == 1, what="C refuses it"
    )
    assert shown(c, room, answer)["text"] == "ok"  # type: ignore[index]


async def test_an_offline_member_catches_up_on_edits_deletes_and_reactions(mesh: Mesh) -> None:
    await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["B", "C"])
    a = mesh["A"]
    kept = a.chat.say(room, "first draft")
    gone = a.chat.say(room, "zyzzyva secret plans")
    for name in ("B", "C"):
        await wait_until(has(mesh[name], room, gone), what=f"{name} has both")
    await mesh.stop("C")
    a.chat.edit(kept, "final draft")
    a.chat.react(kept, "🎉")
    a.chat.delete(gone)
    await wait_until(has(mesh["B"], room, gone, deleted=True), what="B has the delete")

    c = await mesh.start("C", dial="B")
    await wait_until(
        has(c, room, kept, text="final draft", edited=True, reactions={"🎉": 1}),
        timeout=20,
        what="C catches up on the edit and the reaction",
    )
    await wait_until(has(c, room, gone, deleted=True, text=""), what="C catches up on the delete")
    assert c.chat.search("zyzzyva") == []
    # the deleted words are in no member's database file any more (nor in its WAL)
    for name in ("A", "B", "C"):
        await mesh.stop(name)
        assert not _files_hold(mesh.root / name, b"zyzzyva"), f"{name}'s database holds it"


def _files_hold(home: Path, needle: bytes) -> bool:
    return any(needle in path.read_bytes() for path in home.glob("*.db*") if path.is_file())


async def test_a_direct_edit_reaches_a_peer_that_was_offline_through_a_mailbox(
    mesh: Mesh,
) -> None:
    a, _b, c = await mesh.line("A", "B", "C")
    await wait_until(lambda: a.node.router.route_to(c.node.identity.public_key, a.node.clock()))
    msg = a.chat.send_direct(mesh.ids["C"], "see you tomorow")
    await wait_until(has(c, mesh.ids["A"], msg), what="C reads it")
    await mesh.stop("C")
    a.chat.edit(msg, "see you tomorrow")
    a.chat.react(msg, "👋")
    await wait_until(lambda: _mailbox(mesh["B"]) >= 2, what="B keeps both for C")
    c = await mesh.start("C", dial="B")
    await wait_until(
        has(c, mesh.ids["A"], msg, text="see you tomorrow", edited=True, reactions={"👋": 1}),
        timeout=20,
        what="C gets the edit and the reaction from B's mailbox",
    )


def _mailbox(daemon: Daemon) -> int:
    return int(daemon.node.status()["caches"]["mailbox"]["size"])


async def test_the_cli_searches_edits_deletes_replies_reacts_and_counts_unread(
    mesh: Mesh,
) -> None:
    await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["B", "C"])
    c = mesh["C"]
    msg = json.loads((await cli(mesh, "A", "reply", "0" * 8, "x", "--json")).stdout or "null")
    assert msg is None  # no such message: one line on stderr, no output
    said = mesh["A"].chat.say(room, "quarterly numbers @C")
    await wait_until(has(c, room, said), what="C reads it")

    found = await cli(mesh, "C", "search", "quarterly", "--in", "team", "--json")
    assert found.returncode == 0, found.stderr
    [hit] = json.loads(found.stdout)
    assert (hit["id"], hit["conv"], hit["author"]) == (said, room, mesh.ids["A"])
    unread = json.loads((await cli(mesh, "C", "unread", "--json")).stdout)
    assert unread == [{"conv": room, "unread": 1, "mentions": 1}]

    refused = await cli(mesh, "C", "edit", said[:10], "mine now")
    assert refused.returncode != 0
    assert refused.stderr.strip().endswith("only its author can edit a message")
    assert "Traceback" not in refused.stderr

    edited = await cli(mesh, "A", "edit", said[:10], "quarterly figures", "--json")
    assert edited.returncode == 0, edited.stderr
    reacted = json.loads((await cli(mesh, "C", "react", said, "👍", "--json")).stdout)
    assert (reacted["msg_id"], reacted["emoji"], reacted["on"]) == (said, "👍", True)
    replied = json.loads((await cli(mesh, "C", "reply", said, "thanks", "--json")).stdout)
    await wait_until(has(c, room, said, edited=True), what="the edit at C")
    history = json.loads((await cli(mesh, "C", "history", "team", "--json")).stdout)
    first, second = history
    assert (first["text"], first["edited"], first["deleted"], first["reactions"]) == (
        "quarterly figures",
        True,
        False,
        {"👍": 1},
    )
    assert (second["id"], second["reply_to"]) == (replied["id"], said)

    deleted = await cli(mesh, "A", "delete", said, "--json")
    assert deleted.returncode == 0, deleted.stderr
    await wait_until(has(c, room, said, deleted=True), what="the delete at C")
    text = (await cli(mesh, "C", "history", "team")).stdout
    assert "message deleted" in text and "quarterly" not in text
    assert json.loads((await cli(mesh, "C", "read", "team", "--json")).stdout) == {"conv": room}
    assert json.loads((await cli(mesh, "C", "unread", "--json")).stdout) == []
