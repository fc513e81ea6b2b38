"""A cursor still due to be sent when the node stops goes out at the stop, not from a timer
that would find the database closed (crdt.awareness.Cursors.stop)."""

from __future__ import annotations

import asyncio
from typing import Any

from crdt.awareness import SEND_EVERY
from tests.integration.harness import Mesh


async def test_a_cursor_due_at_stop_leaves_no_timer_behind(mesh: Mesh) -> None:
    await mesh.start("A")
    service = mesh.notes["A"]
    notes = mesh.notes_of("A")
    note_id = notes.new(mesh["A"].chat.rooms.new("team"), "plan")
    notes.append(note_id, "some text")
    cursors = service.cursors
    assert cursors is not None
    cursors.set_cursor(note_id, 1)
    cursors.set_cursor(note_id, 2)  # within SEND_EVERY of the first: it waits for a timer
    failures: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    try:
        await mesh.stop("A")
        await asyncio.sleep(3 * SEND_EVERY)  # past when the timer would have fired
    finally:
        loop.set_exception_handler(None)
    assert failures == []
