"""A running peer for a front end: the daemon (node, chat) and the notes service, together."""

from __future__ import annotations

import os

from chat.daemon import Daemon
from chat.messages import Chat
from crdt.notes import Notes
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import Node, NodeConfig


class Session:
    """What the terminal UI talks to; start it inside the UI's event loop."""

    def __init__(self, daemon: Daemon, service: NotesService) -> None:
        self.daemon = daemon
        self.service = service
        self.started = False

    @classmethod
    def for_home(
        cls,
        home: Home,
        config: NodeConfig,
        bridge: tuple[str, int] | None = None,
        name: str = "",
        passphrase: str | None = None,
    ) -> Session:
        """A session on `home`, creating its identity first if it has none."""
        if home.has_identity():
            identity = home.load_identity(passphrase)
        else:
            identity = home.create_identity(name or os.environ.get("USER", ""), passphrase)
        service = NotesService(bridge=bridge)
        return cls(Daemon(home, identity, config, extensions=[service]), service)

    async def start(self) -> None:
        if not self.started:
            await self.daemon.start()
            self.started = True

    async def stop(self) -> None:
        if self.started:
            self.started = False
            await self.daemon.stop()

    @property
    def node(self) -> Node:
        return self.daemon.node

    @property
    def chat(self) -> Chat:
        return self.daemon.chat

    @property
    def notes(self) -> Notes:
        notes = self.service.notes
        assert notes is not None, "the session is not started"
        return notes

    @property
    def me(self) -> str:
        return self.daemon.node.identity.peer_id

    def display_name(self, peer_id: str) -> str:
        """How the UI names a peer: 'you', a contact's nickname, else the name the peer
        announced itself, else a short id."""
        if peer_id == self.me:
            return "you"
        return self.chat.contacts.display_name(peer_id)
