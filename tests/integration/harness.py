"""A mesh of daemons for integration tests: real homes, real SQLite, real websockets on loopback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from chat.daemon import Daemon
from chat.files.service import FilesConfig
from crdt.notes import Notes
from crdt.service import NotesService
from mesh.routing.router import RouterConfig
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress
from mesh.wire.link import LinkConfig
from tests.waiting import wait_until

FAST_LINK = LinkConfig(handshake_timeout=2.0, heartbeat_interval=1.0, idle_timeout=5.0)


class Mesh:
    """Daemons by name, each in its own home under one temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.daemons: dict[str, Daemon] = {}
        self.addresses: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.notes: dict[str, NotesService] = {}

    async def start(
        self,
        name: str,
        dial: str | None = None,
        bridge: bool = False,
        files: FilesConfig | None = None,
        router: RouterConfig | None = None,
    ) -> Daemon:
        """Start a daemon (with the Yjs bridge on a free loopback port when `bridge`; `files`:
        what attachments may take, else the defaults; `router`: else a node's defaults)."""
        home = Home(self.root / name)
        identity = home.load_identity() if home.has_identity() else home.create_identity(name)
        port = (
            int(self.addresses[name].split("#")[0].rsplit(":", 1)[1])
            if name in self.addresses
            else 0
        )
        peers = [PeerAddress.parse(self.addresses[dial])] if dial else []
        config = NodeConfig(
            listen=("127.0.0.1", port),
            peers=peers,
            auto_connect=False,
            link=FAST_LINK,
            reconnect_initial=0.05,
            reconnect_max=0.5,
        )
        if router is not None:
            config = replace(config, router=router)
        service = NotesService(bridge=("127.0.0.1", 0) if bridge else None)
        daemon = Daemon(home, identity, config, extensions=[service], files=files)
        self.notes[name] = service
        await daemon.start()
        assert daemon.node.address is not None
        self.addresses[name] = daemon.node.address
        self.ids[name] = identity.peer_id
        self.daemons[name] = daemon
        return daemon

    async def stop(self, name: str) -> None:
        await self.daemons.pop(name).stop()

    async def line(self, *names: str, router: RouterConfig | None = None) -> list[Daemon]:
        """Start `names` in order, each dialing the one before it (A <- B <- C)."""
        started = []
        for i, name in enumerate(names):
            started.append(await self.start(name, dial=names[i - 1] if i else None, router=router))
        return started

    def __getitem__(self, name: str) -> Daemon:
        return self.daemons[name]

    def notes_of(self, name: str) -> Notes:
        notes = self.notes[name].notes
        assert notes is not None
        return notes


async def room_with(mesh: Mesh, admin: str, members: list[str], name: str = "team") -> str:
    """A room made by `admin` whose `members` have all joined (they add the admin as a contact)."""
    for member in members:
        mesh[member].chat.contacts.add(mesh.ids[admin])  # invitations from contacts: automatic
    room = mesh[admin].chat.rooms.new(name)
    for member in members:
        mesh[admin].chat.rooms.invite(room, mesh.ids[member])
    everyone = [admin, *members]
    for peer in everyone:
        await wait_until(
            lambda p=peer: (
                len(mesh[p].chat.rooms.state(room).members) == len(everyone)
                and mesh[p].chat.rooms.document_key(room, 0) is not None
            ),
            what=f"{peer} in the room with its document key",
        )
    return room
