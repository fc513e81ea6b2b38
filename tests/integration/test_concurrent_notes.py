"""Two editors at once, each at an end of a line of three peers: the concurrent trace replayed
as raw Yjs updates through the Yjs bridges, and through the mesh API, converges everywhere.

The trace is Joseph Gentle's editing-traces collection (friendsforever, CC BY 4.0; see
tests/data/editing-traces/README.md). Each editor sends its updates as it made them, in trace
order, without waiting for the other's: most of the second editor's build on items of the first
not received yet, and wait in the peers (crdt/holding.py) until they come.
"""

from __future__ import annotations

import asyncio

from benchmarks.concurrent_trace import agent_updates, final_text, load, replay_client
from tests.conftest import TIMEOUT_SCALE, wait_until
from tests.integration.harness import Mesh, room_with

#: transactions replayed through the bridges: the first 10,000 of 26,078, so that the test
#: stays under ~30 s on a slow machine (the whole takes ~35 s here, three peers and both clients
#: in one process); benchmarks/yreplay.py replays the whole through bridges, the mesh API
#: test below replays the whole
BRIDGE_TXNS = 10000


async def _line(mesh: Mesh, bridges: bool) -> str:
    """Peers A - B - C, all three members of a room with one note; the note's id."""
    await mesh.start("A", bridge=bridges)
    await mesh.start("B", dial="A")
    await mesh.start("C", dial="B", bridge=bridges)
    room = await room_with(mesh, "A", ["B", "C"])
    note_id = mesh.notes_of("A").new(room, "friends")
    await wait_until(lambda: note_id in mesh.notes_of("C").notes, what="C has the note")
    return note_id


async def _converged(mesh: Mesh, note_id: str, expected: str) -> None:
    for peer in "ABC":
        await wait_until(
            lambda p=peer: mesh.notes_of(p).cat(note_id) == expected,
            timeout=60,
            what=f"{peer} has the final text",
        )


async def test_two_editors_on_the_bridges_at_the_ends_of_a_line_converge(mesh: Mesh) -> None:
    trace = load()
    first, second = agent_updates(trace, BRIDGE_TXNS)
    expected = final_text([first, second])
    assert sum(len(u) for u in (first, second)) == BRIDGE_TXNS
    note_id = await _line(mesh, bridges=True)
    urls = []
    for peer in "AC":
        bridge = mesh.notes[peer].bridge
        assert bridge is not None
        urls.append(f"{bridge.url}/{note_id}?token={bridge.token}")
    # each client's document must reach the final text too (what its peer sent it)
    await asyncio.gather(
        replay_client(urls[0], first, expected, timeout=60 * TIMEOUT_SCALE),
        replay_client(urls[1], second, expected, timeout=60 * TIMEOUT_SCALE),
    )
    await _converged(mesh, note_id, expected)


async def test_two_editors_through_the_mesh_api_at_the_ends_of_a_line_converge(
    mesh: Mesh,
) -> None:
    trace = load()
    first, second = agent_updates(trace)
    expected = trace["endContent"]
    note_id = await _line(mesh, bridges=False)

    async def edit(peer: str, updates: list[bytes]) -> None:
        notes = mesh.notes_of(peer)
        for n, update in enumerate(updates):
            notes.apply_external(note_id, update)  # what the bridge does with a client's update
            if n % 64 == 63:
                await asyncio.sleep(0)  # the other editor, and the links, go on meanwhile

    await asyncio.gather(edit("A", first), edit("C", second))
    await _converged(mesh, note_id, expected)
