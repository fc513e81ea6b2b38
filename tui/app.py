"""The meshnotes Textual app: one App, a Screen per file, the session underneath.

The app holds no protocol logic: it renders the session's state and turns
keys into calls on its chat and notes API.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from collections.abc import Iterable

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from mesh.errors import MeshError
from tui.collector import NEVER, IdleCollector
from tui.main_screen import MainScreen
from tui.session import Session
from tui.widgets.note_view import NoteView

#: how often the app looks whether a full collection is due (seconds)
COLLECT_EVERY = 0.5


class MeshnotesApp(App[None]):
    TITLE = "meshnotes"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, session: Session, *, own_session: bool = True, bell: bool = True) -> None:
        """`own_session`: stop the session on exit (a session is started on mount either way:
        one whose node runs already only starts hearing its events). `bell`: ring the
        terminal bell when a message mentions you (the setting ``bell``)."""
        super().__init__()
        self.session = session
        self.mention_bell = bell
        self.own_session = own_session
        self.error: str | None = None
        #: the collector's thresholds before the app made its full passes itself
        self._thresholds: tuple[int, int, int] | None = None
        self._collector: IdleCollector | None = None

    async def on_mount(self) -> None:
        self.stop_on_signals()
        try:
            await self.session.start()
        except MeshError as exc:
            self.exit_with_error(str(exc))
            return
        await self.push_screen(MainScreen(self.session, bell=self.mention_bell))
        # What is alive now (modules, the node, the app's widgets) lives as long as the
        # app: kept out of the collector's full passes, which would otherwise walk it
        # all, tens of milliseconds that a keystroke waits for now and then. And those
        # passes are made in pauses of the input (tui/collector.py), not mid-keystroke.
        gc.freeze()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(self._thresholds[0], self._thresholds[1], NEVER)
        self._collector = IdleCollector(time.monotonic())
        self.set_interval(COLLECT_EVERY, self._collect_if_due)
        if self.session.notice:
            self.notify(self.session.notice, severity="warning", timeout=15)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent) and self._collector is not None:
            self._collector.input(time.monotonic())
        await super().on_event(event)

    def _collect_if_due(self) -> None:
        assert self._collector is not None
        if self._collector.due(time.monotonic(), gc.get_count()[2]):
            gc.collect()
            self._collector.collected(time.monotonic())

    def on_unmount(self) -> None:
        # the collector as it was once the app is gone (tests run many apps in one process)
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
        gc.unfreeze()

    async def action_quit(self) -> None:
        await self.shut_down()

    async def on_main_screen_node_stopped(self, message: MainScreen.NodeStopped) -> None:
        await self.shut_down(message.error)

    async def shut_down(self, error: str | None = None) -> None:
        """Write out the open views, stop the session if it is the app's, and exit (with
        status 1 and `error` as the command's one line, if given)."""
        self.close_views()
        if self.own_session:
            await self.session.stop()
        if error is None:
            self.exit()
        else:
            self.exit_with_error(error)

    def exit_with_error(self, message: str) -> None:
        """Quit with exit status 1, `message` the one line the command prints."""
        self.error = message
        self.exit(return_code=1)

    def stop_on_signals(self) -> None:
        """SIGTERM and SIGHUP (the terminal went away) quit as ctrl+q does: the node stops
        and removes its control socket. Not under tests (headless), whose process it is not."""
        if self.is_headless:
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self.call_next, self.action_quit)

    def close_views(self) -> None:
        """Write out what the open views hold while the node still runs: quitting stops it
        before Textual unmounts them."""
        for screen in self.screen_stack:
            for view in screen.query(NoteView):
                view.close()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, MainScreen):
            return
        for title, help_text, action in (
            ("New room", "Create a room you administer", screen.action_new_room),
            ("Invite to room", "Invite a peer to the open room", screen.action_invite),
            (
                "Remove member",
                "Remove a member; they read nothing said after",
                screen.action_remove_member,
            ),
            ("Accept invitation", "Join the open room you were invited to", screen.action_join),
            ("Message a peer", "Open a direct conversation", screen.action_direct),
            ("New note", "Create a note in the open room", screen.action_new_note),
            ("Import note", "Create a note from a Markdown file", screen.action_import_note),
            ("Export note", "Write the open note to a Markdown file", screen.action_export_note),
            ("Note history", "The open note's versions; restore one", screen.action_history),
            ("Delete note", "Delete the open note for every member", screen.action_delete_note),
            (
                "Undelete note",
                "Bring back a deleted note (its deleter or the admin, within 30 days)",
                screen.action_undelete_note,
            ),
            (
                "Toggle Markdown preview",
                "Show the open note rendered (f2), or the editor again",
                screen.action_toggle_preview,
            ),
            ("Connect to peer", "Dial ws://HOST:PORT#PEERID", screen.action_connect),
            (
                "Share my contact",
                "Show my invite code and its QR code",
                screen.action_share_contact,
            ),
            (
                "Add contact from invite",
                "Paste an invite code: add the contact and dial it",
                screen.action_add_from_invite,
            ),
            ("Search", "Search every conversation's history", screen.action_search),
            ("Peers and contacts", "Routes, safety numbers, verification", screen.action_peers),
            ("Help", "Every key binding", screen.action_help),
        ):
            yield SystemCommand(title, help_text, action)
