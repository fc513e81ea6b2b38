"""Names over real nodes: the name a peer announces in its address record, shown by the CLI;
contacts rename, remove and block (a blocked peer's messages dropped, counted, not shown)."""

from __future__ import annotations

import asyncio
import json
import subprocess

from mesh.wire.identity import encode_peer_id
from tests.integration.harness import Mesh
from tests.integration.test_cli_line import BASE
from tests.waiting import wait_until


async def cli(mesh: Mesh, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`meshnotes --home <name's home> ARGS`, run beside the test's event loop (the node in
    this process must go on answering its control socket meanwhile)."""
    command = [*BASE, "--home", str(mesh.root / name), *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )


def received(mesh: Mesh, at: str, peer: str, text: str) -> bool:
    return any(m["text"] == text for m in mesh[at].chat.history(mesh.ids[peer]))


async def test_the_name_a_peer_announces_is_shown_by_contacts_and_history(mesh: Mesh) -> None:
    await mesh.line("alice-laptop", "B")
    a_id = mesh.ids["alice-laptop"]
    b = mesh["B"]
    # alice's signed address record came with the link, and with it her own name
    await wait_until(
        lambda: b.chat.contacts.own_name_of(a_id) == "alice-laptop", what="B learns A's name"
    )
    mesh["alice-laptop"].chat.send_direct(mesh.ids["B"], "hello")
    await wait_until(lambda: received(mesh, "B", "alice-laptop", "hello"), what="the DM at B")

    added = await cli(mesh, "B", "contacts", "add", a_id)
    assert added.returncode == 0, added.stderr
    listed = await cli(mesh, "B", "contacts", "--json")
    [contact] = json.loads(listed.stdout)
    assert (contact["name"], contact["own_name"], contact["display_name"]) == (
        None,
        "alice-laptop",
        "alice-laptop",
    )
    shown = await cli(mesh, "B", "history", a_id)
    assert shown.returncode == 0, shown.stderr
    assert "alice-laptop: hello" in shown.stdout

    renamed = await cli(mesh, "B", "contacts", "rename", a_id[:10], "alice")
    assert renamed.returncode == 0, renamed.stderr
    shown = await cli(mesh, "B", "history", "alice", "--json")
    assert [(m["author_name"], m["text"]) for m in json.loads(shown.stdout)] == [("alice", "hello")]
    listed = await cli(mesh, "B", "contacts")
    assert listed.stdout.startswith("alice ") and "(calls itself alice-laptop)" in listed.stdout


async def test_a_blocked_peer_is_dropped_counted_and_hidden_and_remove_forgets_it(
    mesh: Mesh,
) -> None:
    a, b = await mesh.line("A", "B")
    b_id = mesh.ids["B"]
    b.chat.contacts.add(mesh.ids["A"], "alice")
    a.chat.send_direct(b_id, "before")
    await wait_until(lambda: received(mesh, "B", "A", "before"), what="the first DM at B")

    blocked = await cli(mesh, "B", "contacts", "block", "alice")
    assert blocked.returncode == 0, blocked.stderr
    assert blocked.stdout.startswith("blocked alice")
    a.chat.send_direct(b_id, "after")
    await wait_until(
        lambda: b.chat.counters.get("chat_rejected_blocked", 0) >= 1,
        what="B drops A's DM as blocked",
    )
    assert b.chat.history(mesh.ids["A"]) == []  # nothing from that key is shown
    shown = await cli(mesh, "B", "history", mesh.ids["A"], "--json")
    assert json.loads(shown.stdout) == []
    status = json.loads((await cli(mesh, "B", "status", "--json")).stdout)
    assert status["counters"]["chat_rejected_blocked"] >= 1
    assert json.loads((await cli(mesh, "B", "contacts", "--json")).stdout)[0]["blocked"]

    unblocked = await cli(mesh, "B", "contacts", "unblock", "alice")
    assert unblocked.returncode == 0, unblocked.stderr
    # A's outbox retries the unreceipted DM; now it is taken
    await wait_until(lambda: received(mesh, "B", "A", "after"), what="the DM after unblock")

    removed = await cli(mesh, "B", "contacts", "remove", "alice")
    assert removed.returncode == 0, removed.stderr
    assert json.loads((await cli(mesh, "B", "contacts", "--json")).stdout) == []


async def test_contacts_add_refuses_a_bad_key_in_one_line_with_exit_2(mesh: Mesh) -> None:
    await mesh.start("B")
    not_a_key = encode_peer_id(b"\xff" * 32)  # 52 base32 characters, but no Ed25519 key
    for bad, says in ((not_a_key, "not a valid public key"), ("bob!", "not a peer id")):
        result = await cli(mesh, "B", "contacts", "add", bad)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and says in result.stderr
    assert mesh["B"].chat.contacts.all() == []
