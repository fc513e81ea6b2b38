"""Tools for attacking real nodes on loopback: a hostile link, a tapping proxy, daemons to order.

- :class:`HostileLink` completes a genuine secret handshake (it holds the
  network key, as any member of a public mesh does) and then sends whatever
  frames or envelopes the test writes, bypassing every check of the honest
  router.
- :class:`TapProxy` sits between a dialer and a listener, forwards every
  websocket message, records all bytes both ways, and can be told to
  duplicate or alter messages, or to cut the path (a partition).
- :func:`start_daemon` starts a daemon (node, chat, notes) with any node settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chat.daemon import Daemon
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import DestKind, Envelope
from mesh.wire.identity import Identity
from mesh.wire.link import Link, LinkConfig, LinkState
from mesh.wire.netkey import DEFAULT_NETWORK_KEY

FAST_LINK = LinkConfig(handshake_timeout=2.0, heartbeat_interval=1.0, idle_timeout=5.0)
FULL = os.environ.get("MESHNOTES_FULL_FAULTS") == "1"


def full_or_ci(full: int, ci: int) -> int:
    """The size of a fault test: full with MESHNOTES_FULL_FAULTS=1, else the CI form."""
    return full if FULL else ci


def node_config(**kwargs: Any) -> NodeConfig:
    defaults: dict[str, Any] = {
        "listen": ("127.0.0.1", 0),
        "auto_connect": False,
        "link": FAST_LINK,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
    }
    defaults.update(kwargs)
    return NodeConfig(**defaults)


async def start_daemon(root: Path, name: str, dial: list[str] = (), **config: Any) -> Daemon:  # type: ignore[assignment]
    """A daemon with notes in `root/name`, dialing the addresses in `dial`."""
    home = Home(root / name)
    identity = home.load_identity() if home.has_identity() else home.create_identity(name)
    peers = [PeerAddress.parse(a) for a in dial]
    daemon = Daemon(home, identity, node_config(peers=peers, **config), [NotesService()])
    await daemon.start()
    return daemon


def notes_of(daemon: Daemon) -> Any:
    service = daemon.extensions[0]
    assert isinstance(service, NotesService) and service.notes is not None
    return service.notes


def linked(daemon: Daemon, other: Daemon) -> bool:
    key = other.node.identity.public_key
    return any(
        c.peer_key == key and c.link.state is LinkState.OPEN for c in daemon.node.conns.values()
    )


async def befriend(a: Daemon, b: Daemon) -> None:
    """Each adds the other as a contact (so DMs and invitations are accepted at once)."""
    a.chat.contacts.add(b.node.identity.peer_id)
    b.chat.contacts.add(a.node.identity.peer_id)


class HostileLink:
    """A peer that speaks the link protocol correctly and the mesh protocol however it likes."""

    def __init__(self, identity: Identity, network_key: bytes = DEFAULT_NETWORK_KEY) -> None:
        self.identity = identity
        self.network_key = network_key
        self.ws: ClientConnection | None = None
        self.link: Link | None = None
        self.received: list[bytes] = []
        self._reader: asyncio.Task[None] | None = None

    async def open(self, address: str) -> None:
        target = PeerAddress.parse(address)
        self.ws = await ws_connect(target.url, compression=None, proxy=None, max_size=None)
        self.link = Link(
            network_key=self.network_key,
            identity=self.identity,
            now=0.0,
            remote_key=target.peer_key,
            config=LinkConfig(handshake_timeout=1e9, heartbeat_interval=1e9, idle_timeout=1e9),
        )
        await self.ws.send(self.link.data_to_send())
        while self.link.state is LinkState.HANDSHAKE:
            self.received += self.link.receive_data(await self.ws.recv(decode=False), 0.0)
            out = self.link.data_to_send()
            if out:
                await self.ws.send(out)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None and self.link is not None
        with contextlib.suppress(Exception):
            async for message in self.ws:
                assert isinstance(message, bytes)
                self.received += self.link.receive_data(message, 0.0)

    @property
    def closed(self) -> bool:
        return self.ws is None or self.ws.close_code is not None

    async def send(self, *messages: bytes) -> None:
        """Frame and seal `messages` as honest link traffic and write them."""
        assert self.ws is not None and self.link is not None
        for message in messages:
            self.link.send(message, 0.0)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(self.link.data_to_send())

    async def send_raw_frame(self, header_length: int, body: bytes) -> None:
        """A frame whose length field says `header_length`, sealed correctly."""
        assert self.ws is not None and self.link is not None and self.link._encoder is not None
        data = self.link._encoder.encode(struct.pack(">I", header_length) + body)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(data)

    def envelope(
        self,
        type: int,
        now: float,
        *,
        dest: bytes = b"",
        payload: bytes = b"",
        seq: int = 1,
        author: Identity | None = None,
    ) -> Envelope:
        return Envelope.create(
            author or self.identity,
            type,
            dest_kind=DestKind.PEER if dest else DestKind.NONE,
            dest=dest,
            timestamp_ms=int(now * 1000),
            seq=seq,
            payload=payload,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


Tamper = Callable[[str, bytes], list[bytes]]


class TapProxy:
    """A websocket relay between a dialer and `target_url` that records every byte it carries.

    `tamper(direction, message)` may return the messages to forward instead
    (none, the message twice, an altered copy); direction is "up" (dialer to
    listener) or "down". `cut()` closes every connection and refuses new ones
    until `heal()`.
    """

    def __init__(self, target_url: str) -> None:
        self.target_url = target_url
        self.tapped = bytearray()
        self.messages = 0
        self.tamper: Tamper | None = None
        self.refusing = False
        self._server: Server | None = None
        self._pairs: set[tuple[ServerConnection, ClientConnection]] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await serve(
            self._serve, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None
        )
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"

    def address_for(self, target_address: str) -> str:
        """The peer address to dial instead of `target_address` (same pinned key)."""
        return f"{self.url}#{target_address.split('#', 1)[1]}"

    async def _serve(self, down: ServerConnection) -> None:
        if self.refusing:
            await down.close(1013, "partitioned")
            return
        try:
            up = await ws_connect(
                self.target_url, compression=None, max_size=None, proxy=None, ping_interval=None
            )
        except OSError:
            await down.close(1011, "target unreachable")
            return
        pair = (down, up)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pump(down, up, "up"), self._pump(up, down, "down"))
        finally:
            self._pairs.discard(pair)
            await up.close()
            await down.close()

    async def _pump(self, source: Any, sink: Any, direction: str) -> None:
        try:
            async for message in source:
                data = message if isinstance(message, bytes) else message.encode()
                self.tapped += data
                self.messages += 1
                out = self.tamper(direction, data) if self.tamper else [data]
                for item in out:
                    await sink.send(item)
        except ConnectionClosed:
            pass
        finally:
            await sink.close()

    async def cut(self) -> None:
        self.refusing = True
        for down, up in list(self._pairs):
            await down.close()
            await up.close()

    def heal(self) -> None:
        self.refusing = False

    async def stop(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


__all__ = ["FAST_LINK", "HostileLink", "TapProxy", "start_daemon"]
