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
import functools
import itertools
import logging
import random
import socket
import ssl
from collections.abc import Callable

import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve

from mesh.errors import HandshakeError, LinkTimeout, ProtocolError, UsageError
from mesh.routing.router import Router
from mesh.runtime.answers import LinkBudget
from mesh.runtime.config import NodeConfig
from mesh.runtime.conn import Conn, LinkEvents
from mesh.runtime.dialfailure import LINK_LOST, DialFailure, Observation, Stage, classify
from mesh.runtime.dials import Dial, Dials, DialState
from mesh.runtime.opening import Opened, ignore_outcome, opened_later
from mesh.runtime.signatures import OPEN_IN_WORKER, SEAL_IN_WORKER, Checked, SignatureChecker
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

Bursts = asyncio.Queue[asyncio.Future[Opened] | None]


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
        self._wakes: dict[bytes, asyncio.Event] = {}  # set: a waiting dial tries at once
        self.dials = Dials()
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

    def dial(self, address: PeerAddress, attempts: int | None, source: str) -> Dial | None:
        """Keep a link to `address` up (see :meth:`mesh.runtime.node.Node.connect`).

        Returns the dial, or None when `source` is automatic and the peer was
        forgotten or is held. An explicit dial of a peer waiting out its backoff
        or a hold tries again at once.
        """
        now = self.clock()
        if not self.dials.may_dial(address.peer_key, source, now):
            return None
        dial = self.dials.start(address, source, attempts, now)
        task = self._dialers.get(address.peer_key)
        if task is None or task.done():
            self._dialers[address.peer_key] = asyncio.create_task(self._dial_loop(dial))
        else:
            self._wakes.setdefault(address.peer_key, asyncio.Event()).set()
        return dial

    def is_dialing(self, peer: bytes) -> bool:
        return peer in self._dialers

    def disconnect(self, peer: bytes, hold: float) -> int:
        """Close every link with `peer`; its dial, if any, waits `hold` seconds. Links closed."""
        now = self.clock()
        dial = self.dials.hold(peer, now + hold, now)
        if dial is not None:
            self.events.dial_changed(dial, "held")
        closed = 0
        for conn in list(self.conns.values()):
            if conn.peer_key == peer and not conn.closing:
                self.close_link(conn, "disconnect")
                closed += 1
        return closed

    def forget(self, peer: bytes) -> Dial | None:
        """Stop dialing `peer` (a link it has stays up, and is not redialed when it ends)."""
        dial = self.dials.forget(peer)
        task = self._dialers.get(peer)
        if task is not None and (dial is None or dial.state is not DialState.LINKED):
            task.cancel()  # waiting or connecting: nothing to keep
            self._dialers.pop(peer, None)
        return dial

    async def _dial_loop(self, dial: Dial) -> None:
        peer = dial.peer
        try:
            await self._dial_forever(dial)
        finally:
            if self._dialers.get(peer) is asyncio.current_task():
                del self._dialers[peer]

    async def _dial_forever(self, dial: Dial) -> None:
        delay = self.config.reconnect_initial
        wake = self._wakes.setdefault(dial.peer, asyncio.Event())
        while not self._stopped.is_set():
            if self.dials.get(dial.peer) is not dial:
                if (current := self.dials.get(dial.peer)) is None:
                    return  # forgotten
                dial, delay = current, self.config.reconnect_initial  # restarted by connect
            if dial.state is DialState.GIVEN_UP:
                return
            if dial.state is DialState.HELD and dial.held_until is not None:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, dial.held_until - self.clock())):
                        await wake.wait()
                if self.dials.get(dial.peer) is not dial or dial.state is not DialState.HELD:
                    continue
            self.dials.attempting(dial, self.clock())
            started = self.clock()
            failure = await self._attempt(dial)
            if self.dials.get(dial.peer) is not dial:
                continue
            if self.clock() - started > 10 * self.config.reconnect_initial + 5:
                delay = self.config.reconnect_initial  # the link lived: start over
            # full jitter: spread redials of many nodes after an outage
            pause = self.rng.uniform(0, delay)
            delay = min(self.config.reconnect_max, delay * 2)
            if dial.state is DialState.HELD:
                continue  # disconnected while linked: wait out the hold
            now = self.clock()
            if failure is None:
                self.dials.lost(dial, LINK_LOST, now + pause, now)
                self.events.dial_changed(dial, "lost")
            else:
                self.router.count("dial_failures")
                gave_up = self.dials.failed(dial, failure, now + pause, now)
                log.debug("dial failed address=%s error=%s", dial.address, failure.words)
                self.events.dial_changed(dial, "failed")
                if gave_up:
                    self.events.dial_changed(dial, "given up")
                    return
            wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await wake.wait()  # an explicit connect tries again at once

    async def _attempt(self, dial: Dial) -> DialFailure | None:
        """One dial: None if it linked (and the link has ended since), else why it failed."""
        address = dial.address
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

                def opened() -> None:
                    self.dials.linked(dial, self.clock())
                    self.events.dial_changed(dial, "linked")

                conn = await self._run(ws, link, "outbound", str(address), opened)
        except (OSError, websockets.exceptions.WebSocketException, TimeoutError) as exc:
            return classify(_observe_opening(exc))
        if conn.opened:
            return None
        return classify(
            Observation(
                Stage.HANDSHAKE,
                timed_out=isinstance(conn.error, LinkTimeout),
                close_code=_close_code(conn.error),
                handshake_received=link.handshake_received,
                handshake_rejected=isinstance(conn.error, HandshakeError),
            )
        )

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

    async def _run(
        self,
        ws: Connection,
        link: Link,
        direction: str,
        address: str,
        opened: Callable[[], None] | None = None,
    ) -> Conn:
        """Read a link, open its frames and route them, in order.

        A burst of frames whose signatures are checked in worker threads goes to
        `_process` through a short queue, so that while the threads check one
        burst the event loop reads and opens the next and routes the one before;
        a few small frames with nothing queued ahead are routed here at once.
        """
        budget = LinkBudget(self.config.answers, self.clock())
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
                if was_open and (len(data) >= OPEN_IN_WORKER or conn.order.pending):
                    # opened and checked in a worker, in its turn (mesh/runtime/opening.py)
                    self.router.count("link_opens_in_workers")
                    ticket = conn.order.ticket()
                    job = functools.partial(conn.order.open, ticket, link, data, self.clock())
                    conn.bursts_in_flight += 1
                    await bursts.put(self.signatures.run(job))
                    continue
                messages = link.receive_data(data, self.clock())
                if not was_open and link.state is not LinkState.HANDSHAKE:
                    handshaking = False
                    self.pending_handshakes -= 1
                    conn.opened = True
                    if opened is not None:
                        opened()
                    self.events.link_opened(conn)
                if not messages:
                    conn.wake.set()  # the handshake or a heartbeat may have an answer
                    continue
                checking = self.signatures.check(messages)
                if checking.done() and not conn.bursts_in_flight:
                    self._route(conn, messages, checking.result())  # nothing to wait for
                else:
                    conn.bursts_in_flight += 1
                    await bursts.put(asyncio.ensure_future(opened_later(messages, checking)))
        except ProtocolError as exc:
            self._protocol_error(conn, exc)
        except websockets.exceptions.ConnectionClosed as exc:
            conn.error = exc
        except Exception as exc:  # a bug here must cost this link, not the dialer or the node
            conn.error = exc
            self.router.count("link_closed_internal_error")
            log.exception("link to %s closed by an internal error", address)
        finally:
            # the frames read before the end are routed before the link goes down
            try:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5.0):
                        if not processor.done():
                            await bursts.put(None)
                            await asyncio.wait({processor})  # never raises what ended it
            finally:  # cancelled too (the node stopping): no job may wait for a turn
                processor.cancel()
                conn.order.close()
            while not bursts.empty():  # left unrouted: their errors go unread on purpose
                if (left := bursts.get_nowait()) is not None:
                    left.add_done_callback(ignore_outcome)
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
        return conn

    async def _process(self, conn: Conn, bursts: Bursts) -> None:
        """Route the bursts of frames `_run` read, in the order they came."""
        while True:
            item = await bursts.get()
            try:
                if item is None:
                    return
                opened = await item
                if opened.in_worker:
                    self.router.count("signatures_checked_in_workers", len(opened.frames))
                self._route(conn, opened.frames, opened.checked)
            except ProtocolError as exc:  # a message opened in a worker broke the protocol
                self._protocol_error(conn, exc)
                self.close_link(conn, "protocol error")
                return
            except Exception:  # a bug here must cost this link, not the node
                self.router.count("link_closed_internal_error")
                log.exception("link to %s closed by an internal error", conn.address)
                self.close_link(conn, "internal error")
                return
            finally:
                if item is not None:
                    conn.bursts_in_flight -= 1
                bursts.task_done()

    def _protocol_error(self, conn: Conn, exc: ProtocolError) -> None:
        conn.error = exc
        reason = "timeout" if isinstance(exc, LinkTimeout) else type(exc).__name__
        self.router.count(f"link_closed_{reason}")
        log.info("link closed peer=%s reason=%s", conn.address, exc)

    def _route(self, conn: Conn, messages: list[bytes], checked: Checked) -> None:
        self.events.route_burst(conn, messages, checked)
        conn.wake.set()

    async def _writer(self, conn: Conn) -> None:
        # a socket closed under it ends the writer quietly: the reader sees the close and
        # takes the link down (the reader may itself be cancelled at shutdown, and then
        # nobody would retrieve the writer's error)
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while True:
                await conn.wake.wait()
                conn.wake.clear()
                data, sealing = conn.link.data_to_send_sealing_later(SEAL_IN_WORKER)
                await self._write(conn, data)
                if sealing is not None:
                    # the job's nonces follow those of `data` and come before any queued
                    # since: its bytes go out in between, sealed in a worker meanwhile
                    self.router.count("link_seals_in_workers")
                    await self._write(conn, await self.signatures.run(sealing.seal))
                if conn.closing:
                    await self._write(conn, conn.link.data_to_send())  # the goodbye
                    await conn.ws.close()  # ends the reader's recv() too
                    return

    @staticmethod
    async def _write(conn: Conn, data: bytes) -> None:
        if len(data) <= WS_CHUNK:
            if data:
                await conn.ws.send(data)
            return
        view = memoryview(data)  # websockets copies what it frames: no slice copied first
        for start in range(0, len(data), WS_CHUNK):
            await conn.ws.send(view[start : start + WS_CHUNK])

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


def _observe_opening(exc: BaseException) -> Observation:
    """What a failure before the secret handshake says, in the classifier's terms."""
    if isinstance(exc, ssl.SSLError):
        return Observation(Stage.UPGRADE, tls=True, detail=str(exc.reason or exc))
    if isinstance(exc, TimeoutError) and exc.errno is None:  # asyncio's, not the socket's
        return Observation(Stage.CONNECT, timed_out=True)
    if isinstance(exc, socket.gaierror):
        return Observation(Stage.CONNECT, unknown_host=True)
    if isinstance(exc, OSError):
        return Observation(Stage.CONNECT, errno=exc.errno, detail=exc.strerror or str(exc))
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return Observation(Stage.UPGRADE, http_status=exc.response.status_code)
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return Observation(Stage.HANDSHAKE, close_code=_close_code(exc))
    return Observation(Stage.UPGRADE, detail=str(exc))


def _close_code(exc: BaseException | None) -> int | None:
    if isinstance(exc, websockets.exceptions.ConnectionClosed) and exc.rcvd is not None:
        return int(exc.rcvd.code)
    return None
