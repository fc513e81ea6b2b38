"""A node serving its home: the node, its control socket, and the commands the CLI uses.

:class:`Daemon` is what ``meshnotes run`` starts, and what front ends embed.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from mesh.address import PeerAddress
from mesh.control import ControlServer
from mesh.errors import UsageError
from mesh.home import Home
from mesh.identity import Identity, encode_peer_id
from mesh.node import Node, NodeConfig

MAX_PING_COUNT = 1000


class Daemon:
    """A node bound to a home directory and reachable through its control socket."""

    def __init__(self, home: Home, identity: Identity, config: NodeConfig) -> None:
        self.home = home
        self.node = Node(identity, config)
        self.control = ControlServer(home.control_socket)
        self.control.register("id", self._id)
        self.control.register("status", self._status)
        self.control.register("ping", self._ping)
        self.control.register("connect", self._connect)

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.home.ensure()
        await self.control.start()  # first: refuses a second node on the same home
        try:
            await self.node.start()
        except BaseException:
            await self.control.stop()
            raise

    async def stop(self) -> None:
        await self.control.stop()
        await self.node.stop()

    # -- commands --------------------------------------------------------------

    async def _id(self, args: dict[str, Any]) -> dict[str, Any]:
        identity = self.node.identity
        return {"peer_id": identity.peer_id, "name": identity.name, "address": self.node.address}

    async def _status(self, args: dict[str, Any]) -> dict[str, Any]:
        status = self.node.status()
        status["caches"]["control_refused"] = self.control.refused
        return status

    async def _ping(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        dest = self.node.resolve_peer(str(args["peer"]))
        count = int(args.get("count", 1))
        interval = float(args.get("interval", 0.2))
        timeout = float(args.get("timeout", 5.0))
        if not 1 <= count <= MAX_PING_COUNT:
            raise UsageError(f"--count must be 1..{MAX_PING_COUNT}")
        if not (0 <= interval <= 60 and 0 < timeout <= 300):
            raise UsageError("--interval must be 0..60 s and --timeout 0..300 s")
        replies: list[dict[str, Any]] = []
        for i in range(count):
            if i:
                await asyncio.sleep(interval)
            reply = await self.node.ping(dest, timeout=timeout)
            replies.append({"seq": i + 1, **(asdict(reply) if reply else {"lost": True})})
        return replies

    async def _connect(self, args: dict[str, Any]) -> dict[str, Any]:
        address = PeerAddress.parse(str(args["address"]))
        self.node.connect(address)
        return {"dialing": str(address), "peer_id": encode_peer_id(address.peer_key)}
