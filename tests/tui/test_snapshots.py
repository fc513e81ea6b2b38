"""What the main screens must show, as SVG snapshots (pytest-textual-snapshot).

`snap_compare` runs the app itself with ``App.run()``, that is in an event loop
of its own, after this (synchronous) test has started; daemons started in
another loop cannot serve inside it. So the screens are built in two steps:

1. Once per module, three peers with fixed identities (``Identity.from_seed``)
   play a short scene in their own ``asyncio.run`` on the integration harness
   (alice <- bob <- carol): a room "team" with messages delivered to everyone,
   a direct message from bob, a note with non-ASCII text; then carol goes
   offline and alice says one more thing, which stays pending. All three stop,
   leaving their homes (identity, SQLite database) on disk as a template.
2. Each test copies the template and runs ``MeshnotesApp`` on alice's home with
   ``own_session=True``, so the app starts her session in its own loop on
   mount; `run_before` opens what the snapshot shows. The peers screen also
   starts bob, from his copied home, in that loop (inside `run_before`) and
   waits for his route, to show a live link next to an unreachable contact.

The screenshot ends the app with ``App.exit`` rather than ctrl+q, so
:class:`SnapshotApp` stops the session (and bob) when the app unmounts.

Nothing on these screens may vary between runs: peer ids come from seeds, the
clock shown is pinned (``clock_time``), no port is shown, alice's node listens
alone (so no toast or route appears on its own), and the blinking cursors of
the focused inputs are set steady, since a screenshot may fall on either phase.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

import tui.widgets.message_line
from chat.daemon import Daemon
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import Node, NodeConfig
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity
from tests.conftest import wait_until
from tests.integration.harness import Mesh, room_with
from tui.app import MeshnotesApp
from tui.main_screen import MainScreen
from tui.session import LocalSession

SIZE = (120, 36)
SEEDS = {"alice": 1, "bob": 2, "carol": 3}
NOTE_TEXT = (
    "# Trip to Zürich\n"
    "\n"
    "- Grüße from the café: crème brûlée, naïve façade, smörgåsbord\n"
    "- Ελληνικά, русский, 日本語のメモ — all in one note\n"
    "- budget: 120 € (≈ 115 CHF)\n"
)


def identity(name: str) -> Identity:
    return Identity.from_seed(bytes([SEEDS[name]]) * 32, name)


async def play_scene(root: Path) -> None:
    """The story the snapshots show parts of, left in alice's, bob's and carol's homes."""
    for name in SEEDS:
        home = Home(root / name)
        home.ensure()
        identity(name).save(home.identity_file)  # the harness loads it instead of making one
    mesh = Mesh(root)
    try:
        await mesh.line("alice", "bob", "carol")
        alice, bob = mesh["alice"].chat, mesh["bob"].chat
        alice.contacts.add(mesh.ids["bob"], "bob")
        alice.contacts.add(mesh.ids["carol"], "carol")
        alice.contacts.verify(mesh.ids["carol"], True)
        room = await room_with(mesh, "alice", ["bob", "carol"], name="team")

        def last(peer: str) -> dict[str, object]:
            history = mesh[peer].chat.history(room)
            return history[-1] if history else {}

        async def say(speaker: str, text: str) -> None:
            mesh[speaker].chat.say(room, text)
            await wait_until(
                lambda: (
                    all(last(p).get("text") == text for p in ("alice", "bob", "carol"))
                    and last(speaker).get("status") == "delivered"
                ),
                what=f"{text!r} delivered to everyone",
            )

        await say("alice", "Morning! Shall we plan the trip?")
        await say("bob", "Yes, I booked the train for Friday.")
        await say("carol", "Great, I'll find us a place to stay.")
        await say("alice", "Perfect. I started a note.")

        notes = mesh.notes_of("alice")
        note_id = notes.new(room, "Trip to Zürich")
        notes.append(note_id, NOTE_TEXT)
        notes.flush(note_id)
        carol_notes = mesh.notes_of("carol")
        await wait_until(
            lambda: note_id in carol_notes.notes and carol_notes.cat(note_id) == NOTE_TEXT,
            what="carol has the note",
        )

        bob.send_direct(mesh.ids["alice"], "psst: a gift for carol?")
        await wait_until(
            lambda: (
                any(c["kind"] == "dm" for c in alice.conversations())
                and bob.history(mesh.ids["alice"])[-1]["status"] == "delivered"
            ),
            what="bob's direct message delivered",
        )

        await mesh.stop("carol")
        text = "Carol, can you bring the tickets?"
        alice.say(room, text)  # carol is away: it stays pending
        # bob has it, carol cannot: pending. (Stopping alice right after say() would also hang
        # on Python 3.11: Chat.stop loses its cancel in asyncio.wait_for when woken just before.)
        await wait_until(lambda: last("bob").get("text") == text, what="bob has the last one")
        assert last("alice")["status"] == "pending"
    finally:
        for name in list(mesh.daemons):
            await mesh.stop(name)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scene")
    asyncio.run(play_scene(root))
    return root


@pytest.fixture
def homes(scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the scene's homes, with the clock on screen pinned."""
    root = tmp_path / "homes"
    shutil.copytree(scene, root, ignore=shutil.ignore_patterns("*.sock"))
    # message_line binds clock_time at import, so pin it where it is looked up
    monkeypatch.setattr(tui.widgets.message_line, "clock_time", lambda ts_ms: "09:41")
    return root


class SnapshotApp(MeshnotesApp):
    """The app on alice's home; it stops her session and any extra daemons when it unmounts."""

    def __init__(self, root: Path) -> None:
        config = NodeConfig(listen=("127.0.0.1", 0), auto_connect=False)
        self.local = LocalSession.for_home(Home(root / "alice"), config)
        super().__init__(self.local, own_session=True)
        self.root = root
        self.extra: list[Daemon] = []

    async def on_unmount(self) -> None:
        for daemon in self.extra:
            await daemon.stop()
        await self.session.stop()


def main_screen(pilot: Pilot[None]) -> MainScreen:
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    return screen


async def steady_cursors(pilot: Pilot[None]) -> None:
    """Stop the cursors blinking: a screenshot could otherwise catch either phase."""
    for widget in pilot.app.screen.query("Input, TextArea"):
        assert isinstance(widget, Input | TextArea)
        widget.cursor_blink = False
    await pilot.pause()


def conversation(app: MeshnotesApp, kind: str) -> str:
    return next(c["conv_id"] for c in app.session.conversations() if c["kind"] == kind)


def test_main_screen_shows_the_sidebar_welcome_and_status(snap_compare, homes: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        main_screen(pilot)
        await pilot.pause()

    assert snap_compare(SnapshotApp(homes), terminal_size=SIZE, run_before=run_before)


def test_room_shows_messages_delivered_and_pending(snap_compare, homes: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        main_screen(pilot).open("room", conversation(pilot.app, "room"))  # type: ignore[arg-type]
        await pilot.pause()
        await steady_cursors(pilot)

    assert snap_compare(SnapshotApp(homes), terminal_size=SIZE, run_before=run_before)


def test_note_shows_non_ascii_text(snap_compare, homes: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, MeshnotesApp)
        main_screen(pilot).open("note", app.session.notes()[0]["note_id"])
        await pilot.pause()
        await steady_cursors(pilot)

    assert snap_compare(SnapshotApp(homes), terminal_size=SIZE, run_before=run_before)


def test_peers_screen_shows_routes_and_contacts(
    snap_compare, homes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, SnapshotApp)
        alice = app.local.node
        assert alice.address is not None
        home = Home(homes / "bob")
        config = NodeConfig(
            listen=("127.0.0.1", 0), peers=[PeerAddress.parse(alice.address)], auto_connect=False
        )
        bob = Daemon(home, home.load_identity(), config, extensions=[NotesService()])
        app.extra.append(bob)
        await bob.start()
        bob_key = identity("bob").public_key
        await wait_until(
            lambda: (
                alice.router.route_to(bob_key, alice.clock()) is not None
                and len(alice.status()["links"]) == 1
            ),
            what="alice's route to bob",
        )
        # the screen shows alice's address, whose port is whatever was free: mask the port
        shown = f"ws://127.0.0.1:PORT#{alice.identity.peer_id}"
        real = Node.addresses_for_others
        assert real.fget is not None
        monkeypatch.setattr(
            Node,
            "addresses_for_others",
            property(lambda node: [shown] if node is alice else real.fget(node)),
        )
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(SnapshotApp(homes), terminal_size=SIZE, run_before=run_before)


def test_help_screen_lists_every_key(snap_compare, homes: Path) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        main_screen(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(SnapshotApp(homes), terminal_size=SIZE, run_before=run_before)
