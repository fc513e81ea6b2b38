"""Websocket links: listen, dial with backoff, and run each link's read, route and write tasks.

:class:`Transport` owns the sockets. Every link runs the secret handshake of
:class:`~mesh.wire.link.Link`; the frames it opens go to the node in bursts
(:class:`LinkEvents`), in the order they came, with their signatures checked in
worker threads when the burst is large (mesh/runtime/signatures.py). The
transport decides nothing about what the frames say.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable
from typing import Protocol

import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve

from mesh.errors import LinkTimeout, ProtocolError, UsageError
from mesh.routing.router import Router
from mesh.runtime.answers import AnswerBudget
from mesh.runtime.config import NodeConfig
from mesh.runtime.signatures import SignatureChecker, Verdicts
from mesh.storage.roomlog import Sent
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity, encode_peer_id
from mesh.wire.link import Link, LinkState

log = logging.getLogger("meshnotes.node")

#: bytes carried by one websocket message at most (the stream is cut to fit)
WS_CHUNK = 64 * 1024
#: a link whose unsent bytes pass this is too slow: further messages to it are dropped
MAX_LINK_BACKLOG = 8 * 1024 * 1024
#: bursts of frames a link reads ahead of the one being routed
BURSTS_IN_FLIGHT = 4

Bursts = asyncio.Queue[tuple[list[bytes], asyncio.Future[Verdicts]] | None]


class Conn:
    """One websocket connection and the link state on it."""

    def __init__(
        self,
        link_id: int,
        ws: Connection,
        link: Link,
        direction: str,
        address: str,
        budget: AnswerBudget,
    ):
        self.id = link_id
        self.ws = ws
        self.link = link
        self.direction = direction
        self.address = address
        self.wake = asyncio.Event()
        self.closing = False
        self.bursts_in_flight = 0  # read, queued and not routed yet
        self.budget = budget  # what answering its free requests may still cost
        self.sent: Sent = {}  # what its inventories were answered with
        self.inventory: bytes | None = None  # the latest inventory not answered yet
        self.answering = False

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

    def route_burst(self, conn: Conn, frames: list[bytes], verdicts: Verdicts) -> None:
        """Frames read from the link, in order, with their signature verdicts."""

    def link_closed(self, conn: Conn) -> None:
        """The link is down (after the frames read before the end were routed)."""


class Transport:
    """The node's listener, dialers and links."""

    def __init__(
        self,
        identity: Identity,
        config: NodeConfig,
        router: Router,
        events: LinkEvents,
        *,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.identity = identity
        self.config = config
        self.router = router
        self.events = events
        self.clock = clock
        self.rng = rng
        self.conns: dict[int, Conn] = {}
        self.listen_url: str | None = None
        self.pending_handshakes = 0
        self.signatures = SignatureChecker(router.count)
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._dialers: dict[bytes, asyncio.Task[None]] = {}
        self._stopped = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------

    async def listen(self, host: str, port: int) -> None:
        """Accept links on `host:port` (port 0: any free one); sets :attr:`listen_url`."""
        try:
            self._server = await ws_serve(
                self._accept,
                host,
                port,
                compression=None,
                max_size=WS_CHUNK * 2,
                max_queue=16,
                ping_interval=None,
                server_header=None,
                open_timeout=self.config.link.handshake_timeout,
            )
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        sockname = next(iter(self._server.sockets)).getsockname()
        url_host = f"[{sockname[0]}]" if ":" in sockname[0] else sockname[0]
        self.listen_url = f"ws://{url_host}:{sockname[1]}"

    async def close(self) -> list[asyncio.Task[None]]:
        """Close every link (saying goodbye) and the listener; return the dialers to cancel."""
        self._stopped.set()
        for conn in list(self.conns.values()):
            self.close_link(conn, "shutdown")
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        return list(self._dialers.values())

    # -- dialing -------------------------------------------------------------

    def dial(self, address: PeerAddress, attempts: int | None) -> None:
        """Keep a link to `address` up (see :meth:`mesh.runtime.node.Node.connect`)."""
        task = self._dialers.get(address.peer_key)
        if task is None or task.done():
            self._dialers[address.peer_key] = asyncio.create_task(
                self._dial_loop(address, attempts)
            )

    def is_dialing(self, peer: bytes) -> bool:
        return peer in self._dialers

    async def _dial_loop(self, address: PeerAddress, attempts: int | None) -> None:
        delay = self.config.reconnect_initial
        failures = 0
        while not self._stopped.is_set():
            if attempts is not None and failures >= attempts:
                self._dialers.pop(address.peer_key, None)
                return
            failures += 1
            started = self.clock()
            try:
                async with ws_connect(
                    address.url,
                    compression=None,
                    max_size=WS_CHUNK * 2,
                    max_queue=16,
                    ping_interval=None,
                    open_timeout=self.config.link.handshake_timeout,
                    proxy=None,
                    user_agent_header=None,
                ) as ws:
                    link = Link(
                        network_key=self.config.network_key,
                        identity=self.identity,
                        now=self.clock(),
                        remote_key=address.peer_key,
                        config=self.config.link,
                    )
                    await self._run(ws, link, "outbound", str(address))
            except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
                self.router.count("dial_failures")
                log.debug("dial failed address=%s error=%s", address, exc)
            if self.clock() - started > 10 * self.config.reconnect_initial + 5:
                delay = self.config.reconnect_initial  # the link lived: start over
                failures = 0
            # full jitter: spread redials of many nodes after an outage
            await asyncio.sleep(self.rng.uniform(0, delay))
            delay = min(self.config.reconnect_max, delay * 2)

    async def _accept(self, ws: ServerConnection) -> None:
        if self.pending_handshakes >= self.config.max_pending_handshakes:
            self.router.count("refused_handshake_cap")
            await ws.close(1013, "busy")
            return
        remote = ws.remote_address
        address = f"{remote[0]}:{remote[1]}" if remote else "?"
        link = Link(
            network_key=self.config.network_key,
            identity=self.identity,
            now=self.clock(),
            config=self.config.link,
        )
        await self._run(ws, link, "inbound", address)

    # -- one link ------------------------------------------------------------

    async def _run(self, ws: Connection, link: Link, direction: str, address: str) -> None:
        """Read a link, open its frames and route them, in order.

        A burst of frames whose signatures are checked in worker threads goes to
        `_process` through a short queue, so that while the threads check one
        burst the event loop reads and opens the next and routes the one before;
        a few small frames with nothing queued ahead are routed here at once.
        """
        budget = AnswerBudget(self.config.answers, self.clock())
        conn = Conn(next(self._ids), ws, link, direction, address, budget)
        self.conns[conn.id] = conn
        self.pending_handshakes += 1
        handshaking = True
        writer = asyncio.create_task(self._writer(conn))
        bursts: Bursts = asyncio.Queue(maxsize=BURSTS_IN_FLIGHT)
        processor = asyncio.create_task(self._process(conn, bursts))
        conn.wake.set()  # the client hello is ready at once
        try:
            while link.state is not LinkState.CLOSED and not processor.done():
                deadline = link.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - self.clock())
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                    async with asyncio.timeout(timeout):
                        data = await ws.recv(decode=False)
                except TimeoutError:
                    link.tick(self.clock())
                    conn.wake.set()
                    continue
                was_open = link.state is LinkState.OPEN
                messages = link.receive_data(data, self.clock())
                if not was_open and link.state is not LinkState.HANDSHAKE:
                    handshaking = False
                    self.pending_handshakes -= 1
                    self.events.link_opened(conn)
                if not messages:
                    conn.wake.set()  # the handshake or a heartbeat may have an answer
                    continue
                checking = self.signatures.check(messages)
                if checking.done() and not conn.bursts_in_flight:
                    self._route(conn, messages, checking.result())  # nothing to wait for
                else:
                    conn.bursts_in_flight += 1
                    await bursts.put((messages, checking))
        except ProtocolError as exc:
            reason = "timeout" if isinstance(exc, LinkTimeout) else type(exc).__name__
            self.router.count(f"link_closed_{reason}")
            log.info("link closed peer=%s reason=%s", address, exc)
        except websockets.exceptions.ConnectionClosed:
            pass
        except Exception:  # a bug here must cost this link, not the dialer or the node
            self.router.count("link_closed_internal_error")
            log.exception("link to %s closed by an internal error", address)
        finally:
            # the frames read before the end are routed before the link goes down
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    if not processor.done():
                        await bursts.put(None)
                        await asyncio.wait({processor})  # never raises what ended it
            processor.cancel()
            if handshaking:
                self.pending_handshakes -= 1
            elif conn.peer_key is not None:
                log.info("link down peer=%s", encode_peer_id(conn.peer_key))
            self.conns.pop(conn.id, None)
            self.events.link_closed(conn)
            if link.state is not LinkState.CLOSED:
                link.close()
            conn.closing = True
            conn.wake.set()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await writer
            writer.cancel()
            with contextlib.suppress(Exception):
                await ws.close()

    async def _process(self, conn: Conn, bursts: Bursts) -> None:
        """Route the bursts of frames `_run` read, in the order they came."""
        while True:
            item = await bursts.get()
            try:
                if item is None:
                    return
                messages, checking = item
                self._route(conn, messages, await checking)
            except Exception:  # a bug here must cost this link, not the node
                self.router.count("link_closed_internal_error")
                log.exception("link to %s closed by an internal error", conn.address)
                self.close_link(conn, "internal error")
                return
            finally:
                if item is not None:
                    conn.bursts_in_flight -= 1
                bursts.task_done()

    def _route(self, conn: Conn, messages: list[bytes], verdicts: Verdicts) -> None:
        self.events.route_burst(conn, messages, verdicts)
        conn.wake.set()

    async def _writer(self, conn: Conn) -> None:
        # a socket closed under it ends the writer quietly: the reader sees the close and
        # takes the link down (the reader may itself be cancelled at shutdown, and then
        # nobody would retrieve the writer's error)
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while True:
                await conn.wake.wait()
                conn.wake.clear()
                data = conn.link.data_to_send()
                for start in range(0, len(data), WS_CHUNK):
                    await conn.ws.send(data[start : start + WS_CHUNK])
                if conn.closing:
                    await conn.ws.close()  # ends the reader's recv() too
                    return

    def send(self, conn: Conn, data: bytes) -> None:
        """Queue `data` on an open link (dropped, and counted, when the link is too slow)."""
        if conn.link.state is not LinkState.OPEN:
            return
        if conn.link.backlog > MAX_LINK_BACKLOG:
            self.router.count("dropped_slow_link")
            return
        conn.link.send(data, self.clock())
        conn.wake.set()

    def close_link(self, conn: Conn, reason: str) -> None:
        """Say goodbye on a link and close its socket once what is queued is sent."""
        if conn.closing:
            return
        conn.closing = True
        conn.link.close()
        conn.wake.set()
        log.info("closing link id=%s reason=%s", conn.id, reason)
