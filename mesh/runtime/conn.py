"""One link as the transport runs it, and what the transport tells its owner about links.

:class:`Conn` holds a websocket connection, the sans-I/O :class:`~mesh.wire.link.Link`
on it and the per-link state of the node's tasks; :class:`LinkEvents` is what
:class:`~mesh.runtime.transport.Transport` calls on its owner (the node).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from websockets.asyncio.connection import Connection

from mesh.runtime.answers import LinkBudget
from mesh.runtime.dials import Dial
from mesh.runtime.opening import InOrder
from mesh.runtime.signatures import Checked
from mesh.storage.roomlog import Sent
from mesh.wire.link import Link, LinkState


class Conn:
    """One websocket connection and the link state on it."""

    def __init__(
        self,
        link_id: int,
        ws: Connection,
        link: Link,
        direction: str,
        address: str,
        budget: LinkBudget,
    ):
        self.id = link_id
        self.ws = ws
        self.link = link
        self.direction = direction
        self.address = address
        self.wake = asyncio.Event()
        self.closing = False
        self.bursts_in_flight = 0  # read, queued and not routed yet
        self.budget = budget  # what answering its free requests (and all answers) may still cost
        self.sent: Sent = {}  # what its inventories were answered with
        self.inventory: bytes | None = None  # the latest inventory not answered yet
        self.answering = False
        self.opened = False  # the handshake finished
        self.error: BaseException | None = None  # what ended the link, if not a goodbye
        self.order = InOrder()  # the turns of its messages opened in workers

    @property
    def peer_key(self) -> bytes | None:
        return self.link.remote_key

    @property
    def is_open(self) -> bool:
        return self.link.state is LinkState.OPEN


class LinkEvents(Protocol):
    """What the transport tells its owner about each link."""

    def link_opened(self, conn: Conn) -> None:
        """The handshake finished: `conn.peer_key` is known."""

    def route_burst(self, conn: Conn, frames: list[bytes], checked: Checked) -> None:
        """Frames read from the link, in order, with their signature verdicts and ids."""

    def link_closed(self, conn: Conn) -> None:
        """The link is down (after the frames read before the end were routed)."""

    def dial_changed(self, dial: Dial, event: str) -> None:
        """A dial linked, failed, gave up, lost its link or was held (`event`)."""
