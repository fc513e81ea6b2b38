"""The asyncio node: the owner of a peer's parts, with its timers and its public API.

A :class:`Node` listens for websocket links, dials the addresses it is given (and, unless
``auto_connect`` is off, those of signed address records), runs the secret handshake on every
link, and feeds the router. Protocol decisions are made by :class:`~mesh.wire.link.Link`,
:class:`~mesh.routing.router.Router` and :class:`~mesh.runtime.catchup.CatchUp`; the node moves
bytes and keeps time. Parts: transport.py, conn.py (listener, dialers, link tasks); signatures.py,
opening.py (crypto in threads); addressbook.py (address records); catchup.py, streams.py, ping.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from mesh.errors import StorageError, UsageError
from mesh.routing.router import Action, Close, Deliver, Keep, Router, Send
from mesh.runtime.addressbook import AddressBook
from mesh.runtime.catchup import CatchUp, Rooms
from mesh.runtime.config import NodeConfig
from mesh.runtime.conn import Conn
from mesh.runtime.dials import DISCONNECT_HOLD, Dial
from mesh.runtime.interfaces import reachable_urls
from mesh.runtime.lanpeers import Announcement, LanPeers, mesh_tag
from mesh.runtime.listeners import Listeners
from mesh.runtime.looplag import LagWindow, watch_loop
from mesh.runtime.memory import HeapTrimmer, limit_malloc_arenas
from mesh.runtime.outcomes import DialOutcomes
from mesh.runtime.ping import PingReply, Pings, pong_for
from mesh.runtime.signatures import Checked, share_the_gil
from mesh.runtime.streams import AnswerStreams
from mesh.runtime.transport import WS_CHUNK, Transport
from mesh.storage.mailbox import Mailbox
from mesh.storage.roomlog import RoomLog
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity, encode_peer_id

__all__ = ["WS_CHUNK", "DeliverHandler", "Node", "NodeConfig", "PingReply"]

log = logging.getLogger("meshnotes.node")

DeliverHandler = Callable[[Envelope], Awaitable[None] | None]


class Node:
    """A running mesh peer. Use ``async with Node(identity, config) as node:`` or start/stop.

    With a `mailbox`, it keeps what the router asks to keep and hands it over when
    the peer links; with a `roomlog`, it keeps room envelopes and catches up on
    link-up (name the rooms it asks for with :meth:`set_room_interests`).
    """

    def __init__(
        self,
        identity: Identity,
        config: NodeConfig | None = None,
        *,
        mailbox: Mailbox | None = None,
        roomlog: RoomLog | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.identity = identity
        self.config = config or NodeConfig()
        self.clock = clock
        self.rng = rng or random.Random()
        self.router = Router(identity, clock(), self.config.router, self.rng)
        self.mailbox = mailbox
        self.roomlog = roomlog
        self.heap = HeapTrimmer()  # free heap pages go back after traffic
        self.transport = Transport(
            identity, self.config, self.router, self, clock=clock, rng=self.rng
        )
        self.addresses = AddressBook(
            self.router,
            clock,
            max_records=self.config.max_address_records,
            ttl=self.config.address_record_ttl,
            name=identity.name,
        )
        self.catch_up = CatchUp(self.router, roomlog)
        self.streams = AnswerStreams(
            self.catch_up,
            self.router,
            self.transport.send,
            self._spawn,
            clock=clock,
            max_backlog=self.config.answers.max_backlog,
        )
        self.pings = Pings()
        #: front ends hear ``dial_linked`` and ``dial_failed`` (first failure in a row) here
        self.listeners = Listeners(log, self.router.counters)
        self.outcomes = DialOutcomes()
        self.lan_peers = LanPeers(identity.public_key, mesh_tag(self.config.network_key))
        self._lan: Any = None  # mesh.runtime.lan.LanDiscovery, imported only when LAN is on
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers: dict[int, list[DeliverHandler]] = {}
        self._link_up_handlers: list[Callable[[bytes], None]] = []
        self._keeps: list[tuple[Envelope, bool]] = []  # Keep actions of the burst in hand
        self._in_burst = False
        self._timer_wake = asyncio.Event()
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
        share_the_gil()
        limit_malloc_arenas()
        if self.config.listen is not None:
            await self.transport.listen(*self.config.listen)
        self._spawn(self._timer_loop())
        self._spawn(watch_loop(self.loop_lag))
        for address in self.config.peers:
            self.connect(address, source="peer")
        if self.config.auto_connect:
            self._spawn(self._auto_connect_loop())
        if self.config.lan:
            await self._start_lan()
        log.info("node started peer_id=%s listen=%s", self.identity.peer_id, self.listen_url)

    async def stop(self) -> None:
        """Close every link (saying goodbye) and the listener; wait for the tasks to end."""
        if self._lan is not None:
            await self._lan.stop()
        dialers = await self.transport.close()
        tasks = list(self._tasks) + dialers
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pings.cancel()
        self.transport.signatures.shutdown()
        log.info("node stopped peer_id=%s", self.identity.peer_id)

    @property
    def conns(self) -> dict[int, Conn]:
        """The links, by id (open or still handshaking)."""
        return self.transport.conns

    @property
    def listen_url(self) -> str | None:
        return self.transport.listen_url

    @property
    def reachable_urls(self) -> list[str]:
        """The URLs other devices can dial this node at, non-loopback first (for a node
        listening on all interfaces, one per interface address); empty if it does not listen."""
        if self.listen_url is None or self.config.listen is None:
            return []
        port = int(self.listen_url.rsplit(":", 1)[1])
        return reachable_urls(self.config.listen[0], port)

    @property
    def addresses_for_others(self) -> list[str]:
        """:attr:`reachable_urls` as peer addresses (``ws://HOST:PORT#PEERID``)."""
        return [f"{url}#{self.identity.peer_id}" for url in self.reachable_urls]

    @property
    def address(self) -> str | None:
        """This node's own peer address (``ws://HOST:PORT#PEERID``), if it listens: the
        first of :attr:`addresses_for_others`."""
        addresses = self.addresses_for_others
        return addresses[0] if addresses else None

    # -- public API ----------------------------------------------------------

    def connect(
        self, address: PeerAddress, *, attempts: int | None = None, source: str | None = None
    ) -> Dial | None:
        """Keep a link to `address` up, redialing with jittered exponential backoff.

        With `attempts`, give up after that many dials in a row fail (used for
        addresses learned from peers, which may be stale); without, never.
        `source` says who asked (``connect``, ``peer``, ``address record``,
        ``lan``; by default ``connect``, or ``learned`` with `attempts`): automatic
        sources skip a peer that was forgotten or disconnected (None returned),
        explicit ones clear that (mesh/runtime/dials.py).
        """
        if address.peer_key == self.identity.public_key:
            raise UsageError("that address is this node's own")
        if source is None:
            source = "connect" if attempts is None else "learned"
        return self.transport.dial(address, attempts, source)

    def disconnect(self, peer: bytes, hold: float = DISCONNECT_HOLD) -> int:
        """Close every link with `peer` and redial it no sooner than `hold` seconds from now
        (or an explicit :meth:`connect`); returns how many links were closed."""
        linked = any(c.peer_key == peer for c in self.conns.values())
        if not linked and self.transport.dials.get(peer) is None:
            raise UsageError(f"no link with {encode_peer_id(peer)} and no dial of it")
        return self.transport.disconnect(peer, hold)

    def forget(self, address: str) -> Dial:
        """Stop dialing the one dial matching `address` (full, without #PEERID, or an id prefix).

        Raises UsageError when none or several match.
        """
        dial = self.transport.dials.one(address)
        self.transport.forget(dial.peer)
        return dial

    def dials(self) -> list[dict[str, Any]]:
        """Every dial as ``status --json`` lists it."""
        return self.transport.dials.status(self.clock())

    async def dial_outcome(self, dial: Dial, timeout: float) -> dict[str, Any]:
        """Wait up to `timeout` s for `dial` to link or to fail an attempt; its status then."""
        await self.outcomes.wait(dial, timeout)
        return dial.status(self.clock())

    def on_link_up(self, handler: Callable[[bytes], None]) -> None:
        """Call `handler` with the peer's key whenever a link finishes its handshake."""
        self._link_up_handlers.append(handler)

    def on_deliver(self, type: int, handler: DeliverHandler) -> None:
        """Call `handler` with every verified envelope of `type` addressed to this node."""
        self._handlers.setdefault(type, []).append(handler)

    def set_room_interests(self, rooms: Rooms) -> None:
        """Name the rooms this node belongs to: `rooms()` is asked at every inventory.

        The chat layer registers its joined rooms once, when it is made.
        """
        self.catch_up.rooms = rooms

    def room_interests(self) -> Iterable[bytes]:
        """The rooms this node belongs to, as registered (none until then)."""
        return self.catch_up.rooms()

    def send(self, envelope: Envelope) -> None:
        """Send an envelope authored by this node into the mesh."""
        self.catch_up.keep(envelope, self.clock())
        self._execute(self.router.originate(envelope, self.clock()))

    def penalise(self, peer: bytes, reason: str) -> None:
        """Charge `peer` for a fault found above the mesh (see :meth:`Router.penalise`)."""
        self._execute(self.router.penalise(peer, reason, self.clock()))

    async def ping(self, dest: bytes, *, timeout: float = 5.0) -> PingReply | None:
        """Send one signed ping to `dest`; return its reply, or None after `timeout` seconds."""
        envelope = self.router.make(
            EnvelopeType.PING,
            self.clock(),
            dest_kind=DestKind.PEER,
            dest=dest,
            payload=os.urandom(8),
        )
        return await self.pings.send(envelope, self.send, timeout)

    def request_catch_up(self) -> None:
        """Ask every neighbour for the room-log entries we lack (after joining a room, say)."""
        for conn in list(self.conns.values()):
            if conn.is_open:
                self._send_inventory(conn)

    def known_peers(self) -> set[bytes]:
        peers = set(self.router.routes) | set(self.addresses)
        peers.update(c.peer_key for c in self.conns.values() if c.peer_key)
        peers.discard(self.identity.public_key)
        return peers

    def address_of(self, peer: bytes) -> PeerAddress | None:
        """The dialable address a peer published in its signed record, if any."""
        return self.addresses.address_of(peer)

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
            if c.is_open
        ]
        for name, part in (("mailbox", self.mailbox), ("room_log", self.roomlog)):
            if part is not None:
                with contextlib.suppress(StorageError):
                    status["caches"][name] = part.status()
                status["counters"].update(part.counters)
        status["caches"]["address_records"] = self.addresses.status()
        status["counters"].update(self.lan_peers.counters)
        return {
            "peer_id": self.identity.peer_id,
            "name": self.identity.name,
            "address": self.address,
            "addresses": self.addresses_for_others,
            "uptime_s": round(now - self.started_at, 1),
            "links": links,
            "lan": self.lan_peers.status(),
            "pending_handshakes": self.transport.pending_handshakes,
            "dials": self.dials(),
            "loop_lag_ms": self.loop_lag.summary(time.monotonic()),
            **status,
        }

    # -- links (mesh.runtime.transport.LinkEvents) -----------------------------

    def link_opened(self, conn: Conn) -> None:
        peer = conn.peer_key
        assert peer is not None
        log.info("link up peer=%s direction=%s", encode_peer_id(peer), conn.direction)
        self._execute(self.router.link_up(conn.id, peer, self.clock()))
        if conn.id not in self.conns or not conn.is_open:
            return
        for record in self.addresses.exchange(peer, self.reachable_urls):  # peer exchange
            self.transport.send(conn, record.encode())
        if self.catch_up.link_up(conn.id, self.clock()):
            self._send_inventory(conn)
        else:
            delay = max(0.0, self.catch_up.next_deadline() - self.clock())
            asyncio.get_running_loop().call_later(delay, self._send_due_inventories)
        if self.mailbox is not None:
            self._flush_keeps()
            self.streams.hand_over(conn, self.mailbox.handover_pages(peer, self.clock()))
        for handler in self._link_up_handlers:
            handler(peer)

    def route_burst(self, conn: Conn, frames: list[bytes], checked: Checked) -> None:
        self._in_burst = True  # the envelopes to keep go to the mailbox together
        self.heap.busy = True
        now = self.clock()  # one moment for the burst
        try:
            receive = self.router.receive
            for frame, signature_ok, message_id in zip(
                frames, checked.verdicts, checked.ids, strict=True
            ):
                if conn.closing:
                    break
                self._execute(receive(conn.id, frame, now, signature_ok, message_id))
        finally:
            self._in_burst = False
            self._flush_keeps()

    def link_closed(self, conn: Conn) -> None:
        self.catch_up.link_down(conn.id)
        self._execute(self.router.link_down(conn.id, self.clock()))

    def dial_changed(self, dial: Dial, event: str) -> None:
        """Wake who waits on the dial; tell listeners when it links or first fails in a row."""
        if event in ("linked", "failed", "given up"):
            self.outcomes.settled(dial.peer)
        if event == "linked" or (event == "failed" and dial.failures_in_row == 1):
            self.listeners.emit(f"dial_{event}", dial.status(self.clock()))

    # -- router actions ------------------------------------------------------

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                conn = self.conns.get(action.link)
                if conn is not None:
                    self.transport.send(conn, action.data)
            elif isinstance(action, Deliver):
                self._deliver(action.envelope, action.link)
            elif isinstance(action, Close):
                conn = self.conns.get(action.link)
                if conn is not None:
                    self.transport.close_link(conn, action.reason)
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
            self.catch_up.keep(envelope, self.clock())
        if envelope.type == EnvelopeType.INVENTORY:
            conn = self.conns.get(link) if link is not None else None
            if conn is not None:
                self.streams.answer_inventory(conn, envelope.payload)
        elif envelope.type == EnvelopeType.PING:
            self.send(pong_for(self.router, envelope, self.clock()))
        elif envelope.type == EnvelopeType.PONG:
            self.pings.pong(envelope)
        elif envelope.type == EnvelopeType.ADDRESS:
            self.addresses.store(envelope)
        for handler in self._handlers.get(envelope.type, []):
            try:
                result = handler(envelope)
            except Exception:  # a layer's bug must not close the link the envelope came on
                self.router.count("handler_errors")
                log.exception("handler for type %s failed", envelope.type)
                continue
            if asyncio.iscoroutine(result):
                self._spawn(result)

    # -- catch-up --------------------------------------------------------------

    def _send_due_inventories(self, links: list[int] | None = None) -> None:
        """Links that came up while an answer was awaited get our inventory (`links`: routine)."""
        for link in self.catch_up.due() if links is None else links:
            conn = self.conns.get(link)
            if conn is not None and conn.is_open:
                self._send_inventory(conn)

    def _send_inventory(self, conn: Conn) -> None:
        inventory = self.catch_up.inventory(self.clock())
        if inventory is not None:
            self.transport.send(conn, inventory.encode())

    # -- timers --------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            now = self.clock()
            self._execute(self.router.tick(now) + self.catch_up.widen(now))
            self._send_due_inventories(self.catch_up.refresh(self.router.links, now))
            self.addresses.expire(now)
            self.lan_peers.expire(now)
            if self.mailbox is not None:
                with contextlib.suppress(StorageError):
                    self.mailbox.expire(now)
            self.heap.tick(now)
            self._timer_wake.clear()
            delay = max(0.05, self.router.next_deadline() - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, 5.0)):
                    await self._timer_wake.wait()

    async def _auto_connect_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0 + self.rng.random())
            linked = {c.peer_key for c in self.conns.values() if c.peer_key}
            wanted = self.config.target_links - len(linked)
            if wanted <= 0:
                continue
            candidates = self.addresses.candidates(linked, self.transport.is_dialing)
            self.rng.shuffle(candidates)
            for peer in candidates[:wanted]:
                address = self.addresses.address_of(peer)
                if address is not None:
                    self.connect(address, attempts=3, source="address record")
            for address in self.lan_peers.to_redial(self.clock(), self._is_busy):
                self.connect(address, attempts=3, source="lan")

    # -- LAN discovery (mesh/runtime/lan.py, decisions in mesh/runtime/lanpeers.py) ----

    async def _start_lan(self) -> None:
        from mesh.runtime.lan import LanDiscovery, announcement_for

        port = int(self.listen_url.rsplit(":", 1)[1]) if self.listen_url else 0
        host = self.config.listen[0] if self.config.listen is not None else ""
        announcement = announcement_for(self.identity.peer_id, self.lan_peers.tag, host, port)
        if announcement is None:
            # listening on loopback only (or not at all): no device on the LAN could reach us,
            # and a local node (tests, the demo) sends nothing to the network
            log.info("LAN discovery off: the node listens on no address the LAN can reach")
            return
        self.lan_peers.announced = True
        browse = self.config.auto_connect  # --no-auto-connect: LAN peers are not dialed either
        self._lan = LanDiscovery(announcement, self._lan_found, self.lan_peers.lost, browse=browse)
        await self._lan.start()

    def _is_busy(self, peer: bytes) -> bool:
        """Whether a link to `peer` is up or being dialed."""
        linked = any(c.peer_key == peer for c in self.conns.values())
        return linked or self.transport.is_dialing(peer)

    def _lan_found(self, announcement: Announcement | None) -> None:
        address = self.lan_peers.found(announcement, self.clock(), self._is_busy)
        if address is not None and self.config.auto_connect:
            log.info("LAN peer found, dialing %s", address)
            self.connect(address, attempts=3, source="lan")

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
