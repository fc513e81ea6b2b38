"""Two peers share a note; one goes offline, both edit, and they converge when it returns.

    alice <- bob        (bob dials alice; each is a daemon with notes, in a temporary home)

Alice makes a room, invites bob and starts a note. Bob goes offline; alice edits.
Bob restarts without peers and edits offline (his edit is sealed and kept in his
room log). Bob comes back linked to alice: the room logs swap what the other lacks,
and both print the same text. Run from the repository root:

    python examples/shared_note.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chat.daemon import Daemon
from crdt.notes import Notes
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress


async def until(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit(f"shared_note: timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def start(root: Path, name: str, dial: Daemon | None = None) -> tuple[Daemon, Notes]:
    home = Home(root / name)
    identity = home.load_identity() if home.has_identity() else home.create_identity(name)
    peers = [PeerAddress.parse(str(dial.node.address))] if dial else []
    service = NotesService()
    daemon = Daemon(home, identity, NodeConfig(auto_connect=False, peers=peers), [service])
    await daemon.start()
    assert service.notes is not None
    return daemon, service.notes


async def main(root: Path) -> None:
    alice, a_notes = await start(root, "alice")
    bob, b_notes = await start(root, "bob", dial=alice)
    bob.chat.contacts.add(alice.chat.me, "alice")  # invitations from contacts are accepted
    room = alice.chat.rooms.new("plans")
    alice.chat.rooms.invite(room, bob.chat.me)
    await until(lambda: bob.chat.rooms.document_key(room, 0), "bob to join and get the key")
    note = a_notes.new(room, "trip")
    a_notes.append(note, "Trip to Zürich\n")
    await until(lambda: b_notes.all() and b_notes.cat(note).startswith("Trip"), "bob's copy")

    await bob.stop()  # bob goes offline; alice goes on
    a_notes.append(note, "- alice: book the train 🚆\n")

    bob, b_notes = await start(root, "bob")  # bob alone, no peers
    b_notes.get(note).insert(0, "Plan (draft) — ")
    b_notes.flush(note)
    await bob.stop()

    bob, b_notes = await start(root, "bob", dial=alice)  # back online
    try:
        both = ("train", "draft")
        await until(lambda: all(w in a_notes.cat(note) for w in both), "bob's edit at alice")
        await until(lambda: all(w in b_notes.cat(note) for w in both), "alice's edit at bob")
        await until(lambda: a_notes.cat(note) == b_notes.cat(note), "convergence")
        for name, notes in (("alice", a_notes), ("bob", b_notes)):
            print(f"--- {name} ---\n{notes.cat(note)}--- end ---")
    finally:
        await bob.stop()
        await alice.stop()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="mn-note-") as tmp:
        asyncio.run(main(Path(tmp)))
