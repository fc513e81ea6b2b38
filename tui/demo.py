"""``meshnotes demo``: three local peers in a line, a welcome room and note, and the UI.

You <- relay <- third peer, each in its own temporary home: the relay dials
you, the third peer dials the relay, and you and the third peer never link.
The third peer creates a room, invites you, and seeds a welcome note; it
answers every message you send it (so you see multi-hop delivery and
receipts) and adds lines to the note for the first minute (so you see live
edits arrive). Quitting stops all three and deletes their homes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual import events

from mesh.errors import MeshError
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from tui.app import MeshnotesApp
from tui.session import LocalSession

WELCOME_NOTE = """# Welcome to meshnotes

This note lives in the room "welcome", shared by you and the third peer.
The third peer is two hops away: everything between you passes through the
relay, which forwards it without being able to read it.

Type here: the third peer sees your edits live, and its edits appear here
without moving your cursor.
"""

LIVE_LINES = [
    "- third peer: I am editing this note from two hops away.",
    "- third peer: edits from both of us merge (CRDTs), even made offline.",
    "- third peer: press p to see routes and safety numbers.",
    "- third peer: press n for a new room, o for a new note, ? for help.",
    "- third peer: type a line of your own: I see it as you type.",
    "- third peer: the relay forwards our edits but cannot read them.",
    "- third peer: x writes this note to a Markdown file.",
    "- third peer: ctrl+q quits; the demo's homes are deleted then.",
]

#: the third peer adds a line this often, LIVE_LINES through: past the first minute
LIVE_EVERY = 8.0


class Demo:
    """The three peers of the demo and the third peer's answering."""

    def __init__(
        self, root: Path, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.root = root
        self.sleep = sleep
        self.sessions: list[LocalSession] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.note_id: str | None = None

    def _session(self, name: str, dial: LocalSession | None) -> LocalSession:
        peers = []
        if dial is not None:
            from mesh.wire.address import PeerAddress

            peers = [PeerAddress.parse(str(dial.node.address))]
        config = NodeConfig(listen=("127.0.0.1", 0), peers=peers, auto_connect=False)
        return LocalSession.for_home(Home(self.root / name), config, name=name)

    async def start(self) -> LocalSession:
        """Start the three peers; return yours."""
        you = self._session("you", None)
        await you.start()
        relay = self._session("relay", you)
        await relay.start()
        third = self._session("third", relay)
        await third.start()
        self.sessions = [you, relay, third]
        you.chat.contacts.add(third.me, "third")
        you.chat.contacts.add(relay.me, "relay")
        third.chat.contacts.add(you.me, "you")
        third.chat.listeners.append(lambda kind, data: self._answer(third, kind, data))
        self.tasks.append(asyncio.create_task(self._seed(you, third)))
        return you

    async def _seed(self, you: LocalSession, third: LocalSession) -> None:
        """Once the third peer reaches you: the room, the note, then live edits."""
        with contextlib.suppress(asyncio.CancelledError, MeshError):
            while not third.chat.contacts.reachable(you.me):
                await asyncio.sleep(0.1)
            room = third.chat.rooms.new("welcome")
            third.chat.rooms.invite(room, you.me)
            self.note_id = third.notes_layer.new(room, "Welcome")
            third.notes_layer.append(self.note_id, WELCOME_NOTE)
            while you.node.identity.public_key not in third.chat.rooms.state(room).members:
                await asyncio.sleep(0.1)  # your join has to reach the third peer first
            third.chat.say(room, "Hello! I am the third peer, two hops away. Say something.")
            await self.edit_live(third, self.note_id)

    async def edit_live(self, third: LocalSession, note_id: str) -> None:
        """The third peer's live edits: a line of LIVE_LINES every LIVE_EVERY seconds."""
        for line in LIVE_LINES:
            await self.sleep(LIVE_EVERY)
            third.notes_layer.get(note_id).append("\n" + line)
            third.notes_layer.flush(note_id)

    def _answer(self, third: LocalSession, kind: str, data: dict[str, Any]) -> None:
        if kind != "message" or data["author"] == third.me:
            return
        reply = f"third peer here, 2 hops away: got your {data['text'][:60]!r}"

        def send() -> None:
            with contextlib.suppress(MeshError):
                conversation = third.chat.conversation(data["conv_id"])
                if conversation is not None and conversation["kind"] == "dm":
                    third.chat.send_direct(data["author"], reply)
                else:
                    third.chat.say(data["conv_id"], reply)

        asyncio.get_running_loop().call_soon(send)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for session in reversed(self.sessions):
            await session.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class DemoApp(MeshnotesApp):
    """The app, with the demo's peers started before and stopped after."""

    def __init__(self, demo: Demo) -> None:
        super().__init__(LocalSession.__new__(LocalSession), own_session=False)
        self.demo = demo

    async def on_mount(self, event: events.Mount | None = None) -> None:
        # Textual calls every class's on_mount along the MRO: run the base one only once, below
        if event is not None:
            event.prevent_default()
        self.stop_on_signals()
        try:
            self.session = await self.demo.start()
        except MeshError as exc:
            self.error = str(exc)
            await self.demo.stop()
            self.exit(return_code=1)
            return
        await super().on_mount()

    async def action_quit(self) -> None:
        self.close_views()
        await self.demo.stop()
        self.exit()


def run_demo() -> int:
    """Run the demo in this terminal; return the exit status."""
    demo = Demo(Path(tempfile.mkdtemp(prefix="meshnotes-demo-")))
    app = DemoApp(demo)
    try:
        app.run()
    finally:
        shutil.rmtree(demo.root, ignore_errors=True)
    if app.error:
        print(f"meshnotes: error: {app.error}")
        return 1
    return app.return_code or 0
