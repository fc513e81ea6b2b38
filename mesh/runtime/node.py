"""The asyncio node: sockets, tasks and timers around the sans-I/O link and router cores.

A :class:`Node` listens for websocket links, dials the addresses it is given
(and, unless ``auto_connect`` is off, addresses learned from signed address
records), runs the secret handshake on every link, and feeds the router. All
protocol decisions are made by :class:`~mesh.wire.link.Link` and
:class:`~mesh.routing.router.Router`; this module only moves bytes and keeps time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve

from mesh.errors import (
    LinkTimeout,
    MeshError,
    PeerNameError,
    ProtocolError,
    StorageError,
    UsageError,
)
from mesh.routing.pacer import InventoryPacer
from mesh.routing.router import (
    Action,
    Close,
    Deliver,
    Keep,
    Router,
    RouterConfig,
    Send,
    check_signatures,
    room_routing,
)
from mesh.runtime.answers import AnswerBudget, AnswerLimits
from mesh.runtime.looplag import LagWindow, watch_loop
from mesh.storage.mailbox import Mailbox
from mesh.storage.roomlog import RoomLog, Sent
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity, decode_peer_id, encode_peer_id
from mesh.wire.link import Link, LinkConfig, LinkState
from mesh.wire.netkey import DEFAULT_NETWORK_KEY

log = logging.getLogger("meshnotes.node")

#: bytes carried by one websocket message at most (the stream is cut to fit)
WS_CHUNK = 64 * 1024
#: a link whose unsent bytes pass this is too slow: further messages to it are dropped
MAX_LINK_BACKLOG = 8 * 1024 * 1024
#: a burst of at least this many frames, or bytes of frames (large envelopes come few
#: to a burst), has its signatures checked in worker threads
SIGNATURE_BATCH = 16
SIGNATURE_BATCH_BYTES = 16 * 1024
#: bursts of frames a link reads ahead of the one being routed
BURSTS_IN_FLIGHT = 4
#: seconds a thread holds the GIL before one waiting gets it (Python's default is 0.005)
GIL_SWITCH_INTERVAL = 0.0005
#: how far our address record travels, and how often it is re-signed
ADDRESS_HOP_LIMIT = 3
ADDRESS_RECORD_RENEW = 3600.0

DeliverHandler = Callable[[Envelope], Awaitable[None] | None]


@dataclass
class NodeConfig:
    """How a node listens, dials and limits its links."""

    listen: tuple[str, int] | None = ("127.0.0.1", 0)
    peers: list[PeerAddress] = field(default_factory=list)
    auto_connect: bool = True
    target_links: int = 4
    max_pending_handshakes: int = 64
    network_key: bytes = DEFAULT_NETWORK_KEY
    link: LinkConfig = field(default_factory=LinkConfig)
    # rooms flood in a small mesh and go down each author's tree in a large one
    router: RouterConfig = field(default_factory=lambda: room_routing("auto"))
    reconnect_initial: float = 0.25
    reconnect_max: float = 30.0
    max_address_records: int = 1000
    address_record_ttl: float = 24 * 3600.0
    #: what one link's free requests (inventories, mail hand-over) may cost us
    answers: AnswerLimits = field(default_factory=AnswerLimits)


@dataclass(frozen=True)
class PingReply:
    rtt_ms: float
    hops: int


class _Conn:
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


class Node:
    """A running mesh peer. Use ``async with Node(identity, config) as node:`` or start/stop."""

    def __init__(
        self,
        identity: Identity,
        config: NodeConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.identity = identity
        self.config = config or NodeConfig()
        self.clock = clock
        self.rng = rng or random.Random()
        self.router = Router(identity, clock(), self.config.router, self.rng)
        self.conns: dict[int, _Conn] = {}
        self.listen_url: str | None = None
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dialers: dict[bytes, asyncio.Task[None]] = {}
        self._pending_handshakes = 0
        self._pings: dict[bytes, tuple[asyncio.Future[PingReply], float]] = {}
        self._handlers: dict[int, list[DeliverHandler]] = {}
        self._address_records: dict[bytes, Envelope] = {}
        self._own_record: Envelope | None = None
        self._verifier = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="meshnotes-verify"
        )
        self.mailbox: Mailbox | None = None
        self._keeps: list[tuple[Envelope, bool]] = []  # Keep actions of the burst in hand
        self._in_burst = False
        self.roomlog: RoomLog | None = None
        self._inventories = InventoryPacer()  # a node back on many links: one backlog
        #: the rooms this node belongs to (set by the chat layer): named in inventories
        self.room_interests: Callable[[], Iterable[bytes]] = tuple
        self._link_up_handlers: list[Callable[[bytes], None]] = []
        self._timer_wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self.started_at = clock()
        self.loop_lag = LagWindow()

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen (if configured), start dialing the configured peers, start the timers."""
        # The signature workers need the GIL back after every check; at the default 5 ms
        # switch interval they wait on the event loop's routing for most of a burst.
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        if self.config.listen is not None:
            host, port = self.config.listen
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
        self._spawn(self._timer_loop())
        self._spawn(watch_loop(self.loop_lag))
        for address in self.config.peers:
            self.connect(address)
        if self.config.auto_connect:
            self._spawn(self._auto_connect_loop())
        log.info("node started peer_id=%s listen=%s", self.identity.peer_id, self.listen_url)

    async def stop(self) -> None:
        """Close every link (saying goodbye) and the listener; wait for the tasks to end."""
        self._stopped.set()
        for conn in list(self.conns.values()):
            self._close(conn, "shutdown")
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        tasks = list(self._tasks) + list(self._dialers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future, _ in self._pings.values():
            future.cancel()
        self._verifier.shutdown(wait=False, cancel_futures=True)
        log.info("node stopped peer_id=%s", self.identity.peer_id)

    @property
    def address(self) -> str | None:
        """This node's own peer address (``ws://HOST:PORT#PEERID``), if it listens."""
        return f"{self.listen_url}#{self.identity.peer_id}" if self.listen_url else None

    # -- public API ----------------------------------------------------------

    def connect(self, address: PeerAddress, *, attempts: int | None = None) -> None:
        """Keep a link to `address` up, redialing with jittered exponential backoff.

        With `attempts`, give up after that many dials in a row fail (used for
        addresses learned from peers, which may be stale); without, never.
        """
        if address.peer_key == self.identity.public_key:
            raise UsageError("that address is this node's own")
        task = self._dialers.get(address.peer_key)
        if task is None or task.done():
            self._dialers[address.peer_key] = asyncio.create_task(
                self._dial_loop(address, attempts)
            )

    def on_link_up(self, handler: Callable[[bytes], None]) -> None:
        """Call `handler` with the peer's key whenever a link finishes its handshake."""
        self._link_up_handlers.append(handler)

    def on_deliver(self, type: int, handler: DeliverHandler) -> None:
        """Call `handler` with every verified envelope of `type` addressed to this node."""
        self._handlers.setdefault(type, []).append(handler)

    def send(self, envelope: Envelope) -> None:
        """Send an envelope authored by this node into the mesh."""
        self._keep_in_room_log(envelope)
        self._execute(self.router.originate(envelope, self.clock()))

    def _keep_in_room_log(self, envelope: Envelope) -> None:
        if (
            self.roomlog is not None
            and envelope.dest_kind == DestKind.ROOM
            and envelope.type >= EnvelopeType.DATA
        ):
            try:
                self.roomlog.keep(envelope, self.clock())
            except StorageError as exc:
                self.router.count("dropped_roomlog_error")
                log.warning("room log could not keep an envelope: %s", exc)

    async def ping(self, dest: bytes, *, timeout: float = 5.0) -> PingReply | None:
        """Send one signed ping to `dest`; return its reply, or None after `timeout` seconds."""
        now = self.clock()
        nonce = os.urandom(8)
        envelope = self.router.make(
            EnvelopeType.PING, now, dest_kind=DestKind.PEER, dest=dest, payload=nonce
        )
        future: asyncio.Future[PingReply] = asyncio.get_running_loop().create_future()
        self._pings[envelope.message_id] = (future, time.perf_counter())
        try:
            self.send(envelope)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            self._pings.pop(envelope.message_id, None)

    def resolve_peer(self, name: str) -> bytes:
        """Resolve a full peer id or an unambiguous prefix of a known peer's id."""
        name = name.strip().lower()
        if not name:
            raise PeerNameError("empty peer name")
        with contextlib.suppress(UsageError):
            return decode_peer_id(name)
        known = {encode_peer_id(k): k for k in self.known_peers()}
        matches = [key for pid, key in known.items() if pid.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise PeerNameError(f"no known peer matches {name!r}")
        raise PeerNameError(f"{name!r} matches {len(matches)} peers; give more of the id")

    def known_peers(self) -> set[bytes]:
        peers = set(self.router.routes) | set(self._address_records)
        peers.update(c.peer_key for c in self.conns.values() if c.peer_key)
        peers.discard(self.identity.public_key)
        return peers

    def status(self) -> dict[str, Any]:
        """The node's state for ``meshnotes status --json``."""
        now = self.clock()
        status = self.router.status(now)
        links = [
            {
                "peer_id": encode_peer_id(c.peer_key) if c.peer_key else None,
                "address": c.address,
                "direction": c.direction,
                "state": c.link.state.value,
            }
            for c in self.conns.values()
            if c.link.state is LinkState.OPEN
        ]
        for part in (self.mailbox, self.roomlog):
            if part is None:
                continue
            with contextlib.suppress(StorageError):
                status["caches"]["mailbox" if part is self.mailbox else "room_log"] = part.status()
            status["counters"].update(part.counters)
        status["caches"]["address_records"] = {
            "size": len(self._address_records),
            "bound": self.config.max_address_records,
        }
        return {
            "peer_id": self.identity.peer_id,
            "name": self.identity.name,
            "address": self.address,
            "uptime_s": round(now - self.started_at, 1),
            "links": links,
            "pending_handshakes": self._pending_handshakes,
            "loop_lag_ms": self.loop_lag.summary(time.monotonic()),
            **status,
        }

    # -- connections ---------------------------------------------------------

    async def _accept(self, ws: ServerConnection) -> None:
        if self._pending_handshakes >= self.config.max_pending_handshakes:
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

    async def _run(self, ws: Connection, link: Link, direction: str, address: str) -> None:
        """Read a link, open its frames and route them, in order.

        A burst of frames whose signatures are checked in worker threads goes to
        `_process` through a short queue, so that while the threads check one
        burst the event loop reads and opens the next and routes the one before;
        a few small frames with nothing queued ahead are routed here at once.
        """
        budget = AnswerBudget(self.config.answers, self.clock())
        conn = _Conn(next(self._ids), ws, link, direction, address, budget)
        self.conns[conn.id] = conn
        self._pending_handshakes += 1
        handshaking = True
        writer = asyncio.create_task(self._writer(conn))
        bursts: asyncio.Queue[tuple[list[bytes], asyncio.Future[list[bool | None]]] | None]
        bursts = asyncio.Queue(maxsize=BURSTS_IN_FLIGHT)
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
                    self._pending_handshakes -= 1
                    self._link_up(conn)
                if not messages:
                    conn.wake.set()  # the handshake or a heartbeat may have an answer
                    continue
                checking = self._check_signatures(messages)
                if checking.done() and not conn.bursts_in_flight:
                    self._route_burst(conn, messages, checking.result())  # nothing to wait for
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
                self._pending_handshakes -= 1
            elif conn.peer_key is not None:
                log.info("link down peer=%s", encode_peer_id(conn.peer_key))
            self.conns.pop(conn.id, None)
            self._inventories.link_down(conn.id)
            self._execute(self.router.link_down(conn.id, self.clock()))
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

    async def _process(
        self,
        conn: _Conn,
        bursts: asyncio.Queue[tuple[list[bytes], asyncio.Future[list[bool | None]]] | None],
    ) -> None:
        """Route the bursts of frames `_run` read, in the order they came."""
        while True:
            item = await bursts.get()
            try:
                if item is None:
                    return
                messages, checking = item
                self._route_burst(conn, messages, await checking)
            except Exception:  # a bug here must cost this link, not the node
                self.router.count("link_closed_internal_error")
                log.exception("link to %s closed by an internal error", conn.address)
                self._close(conn, "internal error")
                return
            finally:
                if item is not None:
                    conn.bursts_in_flight -= 1
                bursts.task_done()

    def _route_burst(self, conn: _Conn, messages: list[bytes], checks: list[bool | None]) -> None:
        self._in_burst = True  # the envelopes to keep go to the mailbox together
        now = self.clock()  # one moment for the burst
        try:
            for message, signature_ok in zip(messages, checks, strict=True):
                if conn.closing:
                    break
                self._execute(self.router.receive(conn.id, message, now, signature_ok))
        finally:
            self._in_burst = False
            self._flush_keeps()
        conn.wake.set()

    def _check_signatures(self, frames: list[bytes]) -> asyncio.Future[list[bool | None]]:
        """Start the signature checks of a burst: in worker threads (PyNaCl releases the
        GIL), split across them, when the burst is large; a few small frames are checked
        by the router inline (None: not checked yet)."""
        loop = asyncio.get_running_loop()
        if len(frames) < SIGNATURE_BATCH and sum(map(len, frames)) < SIGNATURE_BATCH_BYTES:
            done: asyncio.Future[list[bool | None]] = loop.create_future()
            done.set_result([None] * len(frames))
            return done
        self.router.count("signatures_checked_in_workers", len(frames))
        half = (len(frames) + 1) // 2
        parts = [frames[:half], frames[half:]] if len(frames) > 1 else [frames]
        checks = [loop.run_in_executor(self._verifier, check_signatures, part) for part in parts]

        async def joined() -> list[bool | None]:
            return [verdict for part in await asyncio.gather(*checks) for verdict in part]

        return asyncio.ensure_future(joined())

    def _link_up(self, conn: _Conn) -> None:
        peer = conn.peer_key
        assert peer is not None
        log.info("link up peer=%s direction=%s", encode_peer_id(peer), conn.direction)
        self._execute(self.router.link_up(conn.id, peer, self.clock()))
        if conn.id not in self.conns or conn.link.state is not LinkState.OPEN:
            return
        # peer exchange: our own address record, then the ones we hold
        own = self._own_address_record()
        records = [own] if own is not None else []
        for author, record in self._address_records.items():
            # passed on one more link, as the router would have (within the hop limit)
            if author != peer and record.hops + 2 <= record.hop_limit:
                records.append(record.with_hops(record.hops + 1))
        for record in records:
            self._send_on(conn, record.encode())
        if self._inventories.link_up(conn.id, self.clock()):
            self._send_inventory(conn)
        else:
            delay = max(0.0, self._inventories.next_deadline() - self.clock())
            asyncio.get_running_loop().call_later(delay, self._send_due_inventories)
        if self.mailbox is not None:
            self._flush_keeps()
            pages = self.mailbox.handover_pages(peer, self.clock())
            self._spawn(self._stream(conn, pages, "mailbox_handed_over"))
        for handler in self._link_up_handlers:
            handler(peer)

    async def _writer(self, conn: _Conn) -> None:
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

    def _send_on(self, conn: _Conn, data: bytes) -> None:
        if conn.link.state is not LinkState.OPEN:
            return
        if conn.link.backlog > MAX_LINK_BACKLOG:
            self.router.count("dropped_slow_link")
            return
        conn.link.send(data, self.clock())
        conn.wake.set()

    def _close(self, conn: _Conn, reason: str) -> None:
        if conn.closing:
            return
        conn.closing = True
        conn.link.close()
        conn.wake.set()
        log.info("closing link id=%s reason=%s", conn.id, reason)

    # -- router actions ------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                conn = self.conns.get(action.link)
                if conn is not None:
                    self._send_on(conn, action.data)
            elif isinstance(action, Deliver):
                self._deliver(action.envelope, action.link)
            elif isinstance(action, Close):
                conn = self.conns.get(action.link)
                if conn is not None:
                    self._close(conn, action.reason)
            elif isinstance(action, Keep) and self.mailbox is not None:
                self._keeps.append((action.envelope, action.store))
        if not self._in_burst:
            self._flush_keeps()

    def _flush_keeps(self) -> None:
        """Keep the envelopes the router asked to keep, in one transaction."""
        if not self._keeps or self.mailbox is None:
            self._keeps.clear()
            return
        keeps, self._keeps = self._keeps, []
        try:
            self.mailbox.keep_many(keeps, self.clock())
        except StorageError as exc:
            self.router.count("dropped_mailbox_error", len(keeps))
            log.warning("mailbox could not keep %d envelopes: %s", len(keeps), exc)

    def _deliver(self, envelope: Envelope, link: int | None = None) -> None:
        if envelope.dest_kind == DestKind.ROOM:
            self._keep_in_room_log(envelope)
        if envelope.type == EnvelopeType.INVENTORY:
            self._answer_inventory(envelope, link)
        elif envelope.type == EnvelopeType.PING:
            pong = self.router.make(
                EnvelopeType.PONG,
                self.clock(),
                dest_kind=DestKind.PEER,
                dest=envelope.author,
                payload=envelope.message_id,
            )
            self.send(pong)
        elif envelope.type == EnvelopeType.PONG:
            entry = self._pings.get(envelope.payload)
            if entry is not None and not entry[0].done():
                rtt = (time.perf_counter() - entry[1]) * 1000
                entry[0].set_result(PingReply(round(rtt, 3), envelope.hops + 1))
        elif envelope.type == EnvelopeType.ADDRESS:
            self._store_address_record(envelope)
        for handler in self._handlers.get(envelope.type, []):
            try:
                result = handler(envelope)
            except Exception:  # a layer's bug must not close the link the envelope came on
                self.router.count("handler_errors")
                log.exception("handler for type %s failed", envelope.type)
                continue
            if asyncio.iscoroutine(result):
                self._spawn(result)

    def request_catch_up(self) -> None:
        """Ask every neighbour for the room-log entries we lack (after joining a room, say)."""
        for conn in list(self.conns.values()):
            if conn.link.state is LinkState.OPEN:
                self._send_inventory(conn)

    def _send_due_inventories(self) -> None:
        """Links that came up while an inventory's answer was awaited get ours now."""
        for link in self._inventories.flush():
            conn = self.conns.get(link)
            if conn is not None and conn.link.state is LinkState.OPEN:
                self._send_inventory(conn)

    def _send_inventory(self, conn: _Conn) -> None:
        if self.roomlog is None:
            return
        try:
            payload = self.roomlog.inventory(self.room_interests())
        except StorageError as exc:
            log.warning("room log unreadable: %s", exc)
            return
        inventory = self.router.make(
            EnvelopeType.INVENTORY, self.clock(), payload=payload, hop_limit=1
        )
        self.router.seen.add(inventory.message_id, self.clock())
        self._send_on(conn, inventory.encode())

    def _answer_inventory(self, envelope: Envelope, link: int | None) -> None:
        """A neighbour listed what it holds: send it what it lacks, as we received it.

        Streamed within the link's budget (mesh/runtime/answers.py), one answer at a time
        per link; an inventory that comes meanwhile replaces the one waiting.
        """
        conn = self.conns.get(link) if link is not None else None
        if conn is None or self.roomlog is None:
            return
        if conn.inventory is not None:
            self.router.count("inventory_coalesced")
        conn.inventory = envelope.payload
        if not conn.answering:
            conn.answering = True
            self._spawn(self._answer_inventories(conn))

    async def _answer_inventories(self, conn: _Conn) -> None:
        try:
            while conn.inventory is not None and self.roomlog is not None:
                payload, conn.inventory = conn.inventory, None
                started = time.perf_counter()
                try:
                    pages = self.roomlog.answer(payload, conn.sent)
                except (ValueError, TypeError, msgpack.UnpackException):
                    self.router.count("dropped_bad_inventory")
                    continue
                finally:  # reading the inventory is work done for the link too
                    conn.budget.charge(0, time.perf_counter() - started, self.clock())
                if not await self._stream(conn, pages, "roomlog_sent"):
                    self.router.count("inventory_answered_empty")
        finally:
            conn.answering = False

    async def _stream(self, conn: _Conn, pages: Iterator[list[bytes]], counter: str) -> int:
        """Send the pages of an answer on `conn`, within its budget; return envelopes sent.

        Between pages the event loop runs; a page waits while the link's budget
        is spent or its unsent bytes are above the backlog bound.
        """
        sent = 0
        while True:
            wait = conn.budget.wait(self.clock())
            if wait > 0:
                self.router.count("answer_budget_waits")
                await asyncio.sleep(wait)
            while conn.link.backlog > self.config.answers.max_backlog and not conn.closing:
                await asyncio.sleep(0.01)
            if conn.closing or conn.link.state is not LinkState.OPEN:
                return sent
            started = time.perf_counter()
            try:
                page = next(pages, None)
            except StorageError as exc:
                log.warning("cannot read an answer: %s", exc)
                return sent
            if page is None:
                return sent
            size = 0
            for data in page:
                self._send_on(conn, _handed_on_raw(data))
                size += len(data)
            conn.budget.charge(size, time.perf_counter() - started, self.clock())
            if page:
                self.router.count(counter, len(page))
                sent += len(page)
            await asyncio.sleep(0)

    def _own_address_record(self) -> Envelope | None:
        """Our signed address record, renewed hourly; None when there is nothing to dial."""
        if self.listen_url is None or self.listen_url.startswith(("ws://0.0.0.0:", "ws://[::]:")):
            return None
        now = self.clock()
        record = self._own_record
        if record is None or now - record.timestamp_ms / 1000 > ADDRESS_RECORD_RENEW:
            record = self._own_record = self.router.make(
                EnvelopeType.ADDRESS,
                now,
                payload=msgpack.packb({"addrs": [self.listen_url]}),
                hop_limit=ADDRESS_HOP_LIMIT,
            )
        return record

    def _store_address_record(self, envelope: Envelope) -> None:
        try:
            record = msgpack.unpackb(envelope.payload)
            addrs = [a for a in record["addrs"] if isinstance(a, str)][:4]
        except (ValueError, KeyError, TypeError, msgpack.UnpackException):
            self.router.count("dropped_bad_address_record")
            return
        if not addrs:
            self.router.count("dropped_bad_address_record")
            return
        current = self._address_records.get(envelope.author)
        if current is not None and current.timestamp_ms >= envelope.timestamp_ms:
            return
        if current is None and len(self._address_records) >= self.config.max_address_records:
            oldest = min(self._address_records.values(), key=lambda e: e.timestamp_ms)
            del self._address_records[oldest.author]
        self._address_records[envelope.author] = envelope

    def address_of(self, peer: bytes) -> PeerAddress | None:
        """The dialable address a peer published in its signed record, if any."""
        record = self._address_records.get(peer)
        if record is None:
            return None
        for url in msgpack.unpackb(record.payload)["addrs"]:
            with contextlib.suppress(MeshError, TypeError):
                return PeerAddress.parse(f"{url}#{encode_peer_id(peer)}")
        return None

    # -- timers --------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            now = self.clock()
            self._execute(self.router.tick(now))
            self._expire_address_records(now)
            if self.mailbox is not None:
                with contextlib.suppress(StorageError):
                    self.mailbox.expire(now)
            self._timer_wake.clear()
            delay = max(0.05, self.router.next_deadline() - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, 5.0)):
                    await self._timer_wake.wait()

    def _expire_address_records(self, now: float) -> None:
        limit = (now - self.config.address_record_ttl) * 1000
        for peer in [p for p, e in self._address_records.items() if e.timestamp_ms < limit]:
            del self._address_records[peer]

    async def _auto_connect_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0 + self.rng.random())
            linked = {c.peer_key for c in self.conns.values() if c.peer_key}
            wanted = self.config.target_links - len(linked)
            if wanted <= 0:
                continue
            now = self.clock()
            candidates = [
                peer
                for peer in self._address_records
                if peer not in linked
                and peer not in self._dialers
                and not self.router.is_banned(peer, now)
            ]
            self.rng.shuffle(candidates)
            for peer in candidates[:wanted]:
                address = self.address_of(peer)
                if address is not None:
                    self.connect(address, attempts=3)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _handed_on_raw(data: bytes) -> bytes:
    """A kept envelope (encoded) handed straight to a neighbour: one more link, within its
    hop limit. The hop count is the first byte and outside the signature; the hop limit
    is the fifth (mesh/wire/envelope.py)."""
    return bytes((max(0, min(data[0] + 1, data[4] - 1)),)) + data[1:]
