"""meshnotes over real network stacks: namespaces, veth pairs, bridges, a router (harness.py).

Skipped, with the reason, where network namespaces are not permitted (not root, no iproute2).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.errors import MeshError
from tests.netns.harness import Net, NodeProc, unavailable
from tests.waiting import wait_until

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

try:  # the default listen address: every interface, a fixed port (meshnotes.toml, issue 19)
    from mesh.runtime.settings import DEFAULT_PORT

    LISTEN: list[str] = []
except ImportError:  # before that default existed
    DEFAULT_PORT = 7707
    LISTEN = ["--listen", f"0.0.0.0:{DEFAULT_PORT}"]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    network = Net(tmp_path).build()
    try:
        yield network
    finally:
        network.close()


@pytest.fixture
def net_without_forwarding(tmp_path: Path) -> Iterator[Net]:
    network = Net(tmp_path, forward=False).build()
    try:
        yield network
    finally:
        network.close()


def ask(node: NodeProc, verb: str, *args: Any) -> Any:
    """One control call; None while the node cannot answer (starting, say)."""
    with contextlib.suppress(MeshError, OSError):
        return getattr(node.client(), verb)(*args)
    return None


async def started(node: NodeProc, net: Net) -> NodeProc:
    await wait_until(
        lambda: ask(node, "status") is not None, 30, f"{node.home.name} to start\n{net.logs()}"
    )
    node.peer_id = ask(node, "status")["peer_id"]
    return node


def linked(node: NodeProc, other: NodeProc) -> bool:
    status = ask(node, "status") or {"links": []}
    return any(link["peer_id"] == other.peer_id for link in status["links"])


def texts(node: NodeProc, conversation: str) -> set[str]:
    return {m["text"] for m in ask(node, "history", conversation, 500) or []}


async def lan_pair(net: Net) -> tuple[NodeProc, NodeProc]:
    """a1 and a2 on LAN A, started with no --listen and no --peer: they find each other."""
    a1 = await started(net.start_node("a1", "A", *LISTEN), net)
    a2 = await started(net.start_node("a2", "A", *LISTEN), net)
    await wait_until(lambda: linked(a1, a2), 30, f"a1 and a2 to link over mDNS\n{net.logs()}")
    return a1, a2


def lan_found(node: NodeProc) -> dict[str, Any]:
    return {p["peer_id"]: p for p in (ask(node, "status") or {"lan": []})["lan"]}


async def test_two_nodes_on_one_lan_find_each_other_and_exchange_a_dm(net: Net) -> None:
    a1, a2 = await lan_pair(net)
    # the link may come from a2 finding a1 first; a1 resolves a2's record on its own time
    await wait_until(lambda: a2.peer_id in lan_found(a1), 30, f"a1 to see a2\n{net.logs()}")
    found = lan_found(a1)
    assert found[a2.peer_id]["address"] == f"ws://10.19.1.3:{DEFAULT_PORT}#{a2.peer_id}"
    assert a1.cli("dm", a2.peer_id, "hello over the LAN").returncode == 0
    await wait_until(lambda: "hello over the LAN" in texts(a2, a1.peer_id), 30, "the DM")


def join_by_invite_or_address(newcomer: NodeProc, target: NodeProc, address: str) -> None:
    """Join by invite code where `meshnotes invite` exists, else by `connect ADDRESS`."""
    invite = target.cli("invite", "--json")
    if invite.returncode == 0:
        code = json.loads(invite.stdout)["invite"]
        result = newcomer.cli("contacts", "add", code, "--name", "a1")
    else:
        result = newcomer.cli("connect", address)
    assert result.returncode == 0, result.stderr


async def test_a_node_on_the_other_lan_reaches_both_through_the_mesh(net: Net) -> None:
    a1, a2 = await lan_pair(net)
    b1 = await started(net.start_node("b1", "B", *LISTEN), net)
    join_by_invite_or_address(b1, a1, f"ws://10.19.1.2:{DEFAULT_PORT}#{a1.peer_id}")
    await wait_until(lambda: linked(b1, a1), 30, f"b1 to link to a1\n{net.logs()}")
    assert b1.cli("dm", a2.peer_id, "from the other LAN").returncode == 0
    assert a2.cli("dm", b1.peer_id, "back across the router").returncode == 0
    await wait_until(lambda: "from the other LAN" in texts(a2, b1.peer_id), 30, "b1 -> a2")
    await wait_until(lambda: "back across the router" in texts(b1, a2.peer_id), 30, "a2 -> b1")


async def test_dms_and_a_note_cross_a_slow_link_that_keeps_breaking(
    net_without_forwarding: Net,
) -> None:
    """50 ms each way (± 10 ms) and a cut every 10 s on average, through the shaper: the
    router forwards nothing, so the shaper's proxy is the only way between the LANs."""
    net = net_without_forwarding
    a1, a2 = await lan_pair(net)
    net.start_shaper(
        f"10.19.2.1:{DEFAULT_PORT + 1}", f"10.19.1.2:{DEFAULT_PORT}", delay=0.05, cut_mean=10
    )
    b1 = net.start_node(
        "b1",
        "B",
        *LISTEN,
        "--no-auto-connect",
        "--peer",
        f"ws://10.19.2.1:{DEFAULT_PORT + 1}#{ask(a1, 'status')['peer_id']}",
    )
    b1 = await started(b1, net)
    await wait_until(lambda: linked(b1, a1), 30, f"b1 to link through the shaper\n{net.logs()}")

    sent = {f"dm {i} across the shaper" for i in range(100)}
    for text in sorted(sent):
        b1.client().dm(a2.peer_id, text)

    room = a2.client().room_new("across")["room_id"]
    a2.client().room_invite(room, b1.peer_id)
    await wait_until(lambda: ask(b1, "room_join", room) is not None, 60, "b1 to join the room")
    note = a2.client().note_new(room, "plan")["note_id"]
    await wait_until(lambda: ask(b1, "note_cat", note) is not None, 60, "the note to reach b1")
    a2.client().note_append(note, "from LAN A\n")
    b1.client().note_append(note, "from LAN B\n")

    def converged() -> bool:
        mine, theirs = ask(a2, "note_cat", note), ask(b1, "note_cat", note)
        return (
            mine is not None
            and mine == theirs
            and "from LAN A" in mine["text"]
            and "from LAN B" in mine["text"]
        )

    await wait_until(lambda: sent <= texts(a2, b1.peer_id), 90, "100 DMs")
    await wait_until(converged, 60, f"the note to converge\n{net.logs()}")
