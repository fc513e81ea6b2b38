"""Attachments on a running node: sending, answering FILE envelopes, fetching, progress.

The asyncio edge around the sans-I/O parts: :class:`Files` reads files and
the clock, signs and sends FILE envelopes, and runs one task that wakes
every fetch when its swarm (:mod:`chat.files.swarm`) has work due. What a
peer sends is checked before it changes anything: a chunk against the hash
tree (a bad one costs its author penalty points at the mesh, and it is asked
nothing more), a request against the conversation's members and the
requester's rate and its link's (:mod:`chat.files.serving`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.utils

from chat.files import wire
from chat.files.export import export_file, human_size
from chat.files.format import (
    KEY_SIZE,
    MAX_FILE_SIZE,
    Descriptor,
    HashTree,
    leaf,
    safe_name,
    verify_leaf,
)
from chat.files.holdings import Holdings, seal_file
from chat.files.serving import Server, ServingConfig
from chat.files.swarm import TIMEOUT, WINDOW, Swarm
from chat.messages import Chat
from mesh.errors import ChatError, MeshError, UsageError
from mesh.runtime.answers import LinkBudget
from mesh.runtime.listeners import Listeners
from mesh.storage.store import Store
from mesh.wire.envelope import DestKind, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

log = logging.getLogger("meshnotes.files")

#: seconds between asking around for holders while a fetch makes no progress (doubling up to
#: MAX_QUERY_INTERVAL while none answers, so a file nobody holds costs little)
QUERY_INTERVAL = 5.0
MAX_QUERY_INTERVAL = 300.0
#: seconds a holder that said "busy" is left alone
BUSY_REST = 1.0
#: progress events per second per fetch, at most
PROGRESS_INTERVAL = 0.25


@dataclass
class FilesConfig(ServingConfig):
    """What a node does with attachments (``meshnotes.toml``: auto_download, file_budget)."""

    auto_download: int = 16 * 1024 * 1024
    budget: int = 2 * 1024**3
    window: int = WINDOW
    timeout: float = TIMEOUT


@dataclass
class Fetch:
    """One file being fetched: its swarm and what progress reports need."""

    descriptor: Descriptor
    conv_id: str
    swarm: Swarm
    started: float
    have_at_start: int
    last_query: float = 0.0
    last_progress: float = 0.0
    last_report: float = 0.0
    query_interval: float = QUERY_INTERVAL
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Files:
    """Attachments of one daemon: ``daemon.files``."""

    def __init__(self, chat: Chat, store: Store, directory: Path, config: FilesConfig) -> None:
        self.chat = chat
        self.node = chat.node
        self.config = config
        self.holdings = Holdings(store, directory, config.budget)
        self.fetches: dict[str, Fetch] = {}
        self.counters: dict[str, int] = {}
        self.listeners = Listeners(log, self.counters)
        self.server = Server(
            self.holdings,
            config,
            members=self._members,
            partial=self._partial,
            link_to=self._link_to,
            send=self._send,
            count=self._count,
            budget=self._budget,
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.node.on_deliver(EnvelopeType.FILE, self._on_envelope)
        self.node.on_link_up(self._on_link_up)
        chat.attachment_hooks.append(self._announced)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Resume the fetches a previous run left unfinished, and start the timer task."""
        self.holdings.ensure_directory()
        for row in self.holdings.with_state("fetching"):
            self._begin(row)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.holdings.close_all()

    def _count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def status(self) -> dict[str, Any]:
        return {
            "held_bytes": self.holdings.held_bytes(),
            "budget": self.holdings.budget,
            "fetching": len(self.fetches),
            "auto_download": self.config.auto_download,
        }

    # -- sending -------------------------------------------------------------------------

    async def send(self, conversation: str, path: str) -> dict[str, Any]:
        """Seal a file, keep it, and announce it in a conversation: {"file_id", "message_id"}."""
        source = Path(path)
        if not source.is_file():
            raise UsageError(f"{path} is not a readable file")
        conv_id = self.chat.resolve_conversation(conversation)
        if self.chat.conversation(conv_id) is None:
            conv_id = self.chat.direct_conversation(conversation)
        size = source.stat().st_size
        if size > MAX_FILE_SIZE:
            raise UsageError(f"{path} has {size} bytes; at most {MAX_FILE_SIZE}")
        if not self.holdings.make_room(size, self._member_of):
            raise UsageError(
                f"{path} does not fit in the file budget ({human_size(self.holdings.budget)})"
            )
        self.holdings.ensure_directory()
        key = nacl.utils.random(KEY_SIZE)
        sealing = self.holdings.directory / f".sealing-{os.getpid()}-{key[:6].hex()}"
        name = safe_name(source.name)
        progress = self._sealing_progress(str(source), name, size)
        try:
            size, leaves = await asyncio.to_thread(seal_file, source, key, sealing, progress)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                sealing.unlink()
            raise
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        descriptor = Descriptor(name, size, mime, HashTree(leaves).root, key)
        now = self.node.clock()
        # kept before it is announced: a member asking at once finds it
        self.holdings.add(descriptor, conv_id, None, self.chat.me, True, "complete", now)
        self.holdings.keep_own(descriptor, sealing, leaves)
        text = f"[file] {name} ({human_size(size)}) {descriptor.file_id[:12]}"
        msg_id = self.chat.attach(conv_id, text, descriptor.encode())
        self.holdings.store.execute(
            "UPDATE files SET msg_id = ? WHERE file_id = ?", (msg_id, descriptor.file_id)
        )
        self._count("files_sent")
        return {"file_id": descriptor.file_id, "message_id": msg_id, "name": name, "size": size}

    def _sealing_progress(self, path: str, name: str, size: int) -> Callable[[int], None]:
        """A callback for the sealing thread that emits ``file_sealing`` events on the loop:
        at the start, at most every :data:`PROGRESS_INTERVAL` seconds, and at the end."""
        loop = asyncio.get_running_loop()
        started = self.node.clock()
        last = [time.monotonic()]

        def emit(done: int) -> None:
            elapsed = self.node.clock() - started
            rate = done / elapsed if elapsed > 0 else 0.0
            left = round((size - done) / rate, 1) if rate > 0 else None
            shown = {"path": path, "name": name, "size": size, "have_bytes": done}
            shown.update(state="sealing", rate=round(rate), eta_s=left)
            self.listeners.emit("file_sealing", shown)

        def sealed_so_far(done: int) -> None:  # in the sealing thread
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL or done >= size:
                last[0] = now
                loop.call_soon_threadsafe(emit, done)

        emit(0)
        return sealed_so_far

    def _announced(self, conv_id: str, author: str, msg_id: str, data: bytes) -> None:
        """A member's message announced an attachment: record it, fetch it if small enough."""
        try:
            descriptor = Descriptor.decode(data)
        except ChatError:
            self._count("files_rejected_malformed")
            return
        now = self.node.clock()
        if not self.holdings.add(descriptor, conv_id, msg_id, author, False, "offered", now):
            return
        self._count("files_offered")
        self.listeners.emit("file_offered", self.progress(descriptor.file_id))
        if descriptor.size <= self.config.auto_download:
            with contextlib.suppress(UsageError):
                self.fetch(descriptor.file_id)

    # -- fetching ------------------------------------------------------------------------

    def fetch(self, file: str) -> dict[str, Any]:
        """Start fetching a file (id or prefix) unless it is kept or on its way; its progress."""
        row = self.holdings.resolve(file)
        file_id = row["file_id"]
        if row["state"] in ("offered", "evicted", "over_budget"):
            if not self.holdings.make_room(row["size"], self._member_of):
                self.holdings.set_state(file_id, "over_budget")
                self._count("files_over_budget")
                raise UsageError(
                    f"{row['name']} ({human_size(row['size'])}) does not fit in the file budget"
                    f" ({human_size(self.holdings.budget)})"
                )
            self.holdings.set_state(file_id, "fetching")
            row["state"] = "fetching"
        if row["state"] == "fetching" and file_id not in self.fetches:
            self._begin(row)
        return self.progress(file_id)

    def _begin(self, row: dict[str, Any]) -> None:
        descriptor = self.holdings.descriptor(row)
        have = self.holdings.held(descriptor.file_id)
        swarm = Swarm(
            descriptor.chunks, have, window=self.config.window, timeout=self.config.timeout
        )
        now = self.node.clock()
        held_bytes = len(have) * (descriptor.size // max(1, descriptor.chunks))
        fetch = Fetch(descriptor, row["conv_id"], swarm, now, held_bytes, last_progress=now)
        self.fetches[descriptor.file_id] = fetch
        self._query(fetch, now)
        if swarm.done:  # every chunk kept before a crash: only the final check was left
            self._finish(fetch)
        self._wake.set()

    async def wait(self, file: str, timeout: float) -> dict[str, Any]:
        """Wait up to `timeout` seconds for a fetch to end; its progress then."""
        file_id = self.holdings.resolve(file)["file_id"]
        fetch = self.fetches.get(file_id)
        if fetch is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await fetch.done.wait()
        return self.progress(file_id)

    def progress(self, file_id: str) -> dict[str, Any]:
        """A file's row as ``files list`` shows it, with the rate and time left of its fetch."""
        rows = [r for r in self.holdings.all() if r["file_id"] == file_id]
        if not rows:
            raise UsageError(f"no file {file_id!r} known here")
        shown = rows[0]
        fetch = self.fetches.get(file_id)
        if fetch is not None:
            elapsed = self.node.clock() - fetch.started
            got = shown["have_bytes"] - fetch.have_at_start
            rate = got / elapsed if elapsed > 0 else 0.0
            shown["rate"] = round(rate)
            left = shown["size"] - shown["have_bytes"]
            shown["eta_s"] = round(left / rate, 1) if rate > 0 else None
            shown["holders"] = len(fetch.swarm.holders)
        return shown

    def list(self) -> list[dict[str, Any]]:
        return self.holdings.all()

    async def save(self, file: str, out: str) -> dict[str, Any]:
        """Open a kept file and write it to `out` (a directory: under its name), atomically."""
        row = self.holdings.resolve(file)
        if row["state"] != "complete":
            raise UsageError(f"{row['name']} is {row['state']}, not yet kept: fetch it first")
        descriptor = self.holdings.descriptor(row)
        written = await asyncio.to_thread(export_file, self.holdings.chunks, descriptor, Path(out))
        return {"file_id": descriptor.file_id, "path": str(written), "size": descriptor.size}

    def _members(self, conv_id: str) -> set[bytes]:
        conv = self.chat.conversation(conv_id)
        if conv is not None and conv["kind"] == "dm":
            return {decode_peer_id(conv["peer_id"]), self.chat.identity.public_key}
        try:
            return set(self.chat.rooms.state(conv_id).members)
        except MeshError:
            return set()

    def _member_of(self, conv_id: str) -> bool:
        return self.chat.identity.public_key in self._members(conv_id)

    def _query(self, fetch: Fetch, now: float) -> None:
        """Ask the conversation's members and this node's neighbours which chunks they hold."""
        fetch.last_query = now
        peers = self._members(fetch.conv_id)
        peers.update(c.peer_key for c in self.node.conns.values() if c.peer_key)
        peers.discard(self.chat.identity.public_key)
        payload = wire.Query(fetch.descriptor.root).encode()
        for peer in sorted(peers):
            self._send(peer, payload)
        self._count("files_queries_sent", len(peers))

    def _link_to(self, peer: bytes) -> int | None:
        """The link a message to `peer` leaves on now (None: no path)."""
        route = self.node.router.route_to(peer, self.node.clock())
        return route.link if route is not None and route.link in self.node.router.links else None

    def _budget(self, link: int) -> LinkBudget | None:
        """The answer budgets of a link (its total is what chunks sent over it spend)."""
        conn = self.node.conns.get(link)
        return None if conn is None else conn.budget

    def _reachable(self, peer: bytes) -> bool:
        return self._link_to(peer) is not None

    def _partial(self, file_id: str) -> set[int]:
        """The chunks kept of a file being fetched."""
        fetch = self.fetches.get(file_id)
        if fetch is None:
            return self.holdings.held(file_id)
        return set(range(fetch.descriptor.chunks)) - fetch.swarm.missing

    def _pump(self, fetch: Fetch, now: float) -> None:
        unreachable = frozenset(p for p in fetch.swarm.holders if not self._reachable(p))
        for peer, indices in fetch.swarm.requests(now, unreachable):
            for start in range(0, len(indices), wire.MAX_WANT):
                want = wire.Want.of(fetch.descriptor.root, indices[start : start + wire.MAX_WANT])
                self._send(peer, want.encode())

    def _send(self, peer: bytes, payload: bytes) -> None:
        envelope = self.node.router.make(
            EnvelopeType.FILE,
            self.node.clock(),
            dest_kind=DestKind.PEER,
            dest=peer,
            payload=payload,
        )
        self.node.send(envelope)

    async def _run(self) -> None:
        """Wake each fetch when its swarm has something due; ask around when one stalls."""
        while True:
            now = self.node.clock()
            for fetch in list(self.fetches.values()):
                if fetch.last_progress > fetch.last_query:
                    fetch.query_interval = QUERY_INTERVAL  # chunks came since: ask soon again
                interval = fetch.query_interval
                stalled = now - max(fetch.last_progress, fetch.last_query) >= interval
                if (stalled or not fetch.swarm.holders) and now - fetch.last_query >= interval:
                    self._query(fetch, now)
                    fetch.query_interval = min(MAX_QUERY_INTERVAL, 2 * interval)
                self._pump(fetch, now)
            self.holdings.flush()  # rows of chunks that arrived since: committed within a second
            self.server.tell(now)
            deadlines = [f.swarm.next_deadline() for f in self.fetches.values()]
            deadlines.append(self.server.next_tell())
            due = min([d for d in deadlines if d is not None], default=now + 1.0)
            delay = max(0.05, min(1.0, due - now)) if self.fetches else 5.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _on_link_up(self, peer: bytes) -> None:
        """A new neighbour may hold what a fetch lacks: ask it."""
        payloads = [wire.Query(f.descriptor.root).encode() for f in self.fetches.values()]
        for payload in payloads:
            self._send(peer, payload)

    # -- receiving -----------------------------------------------------------------------

    def _on_envelope(self, envelope: Any) -> None:
        try:
            message = wire.decode(envelope.payload)
        except ChatError:
            self._count("files_rejected_malformed")
            return
        peer = envelope.author
        try:
            if isinstance(message, wire.Query):
                self.server.on_query(peer, message)
            elif isinstance(message, wire.Want):
                self.server.on_want(peer, message, self.node.clock())
            elif isinstance(message, wire.Have):
                self._on_have(peer, message)
            elif isinstance(message, wire.Chunk):
                self._on_chunk(peer, message)
            else:
                self._on_refuse(peer, message)
        except MeshError as exc:
            self._count("files_store_error")
            log.warning("file message from %s not handled: %s", encode_peer_id(peer), exc)

    def _on_have(self, peer: bytes, have: wire.Have) -> None:
        fetch = self.fetches.get(have.root.hex())
        if fetch is None or have.chunks != fetch.descriptor.chunks:
            self._count("files_have_ignored")
            return
        fetch.swarm.add_holder(peer, have.held())
        self._pump(fetch, self.node.clock())

    def _on_refuse(self, peer: bytes, refuse: wire.Refuse) -> None:
        self._count(f"files_refused_by_peer_{refuse.reason}")
        fetch = self.fetches.get(refuse.root.hex())
        if fetch is None:
            return
        if refuse.reason == "busy":
            fetch.swarm.rest(peer, self.node.clock(), BUSY_REST)
        else:
            fetch.swarm.remove_holder(peer)

    def _on_chunk(self, peer: bytes, chunk: wire.Chunk) -> None:
        fetch = self.fetches.get(chunk.root.hex())
        if fetch is None:
            self._count("files_chunks_unasked")
            return
        descriptor, swarm = fetch.descriptor, fetch.swarm
        digest = leaf(chunk.sealed)
        if not verify_leaf(descriptor.root, descriptor.chunks, chunk.index, digest, chunk.proof):
            self._count("files_chunks_bad")
            log.info(
                "bad chunk %d of %s from %s",
                chunk.index,
                descriptor.file_id[:12],
                encode_peer_id(peer),
            )
            swarm.rejected(peer, chunk.index)
            self.node.penalise(peer, "bad_chunk")
            self._pump(fetch, self.node.clock())
            return
        now = self.node.clock()
        if not swarm.received(peer, chunk.index, now):
            self._count("files_chunks_duplicate")
        else:
            self.holdings.write_chunk(
                descriptor.file_id, chunk.index, chunk.sealed, digest, chunk.proof
            )
            self.server.kept_more(descriptor.file_id)
            self._count("files_chunks_fetched")
            fetch.last_progress = now
            if swarm.done:
                self._finish(fetch)
                return
            if now - fetch.last_report >= PROGRESS_INTERVAL:
                fetch.last_report = now
                self.listeners.emit("file_progress", self.progress(descriptor.file_id))
        self._pump(fetch, now)

    def _finish(self, fetch: Fetch) -> None:
        """Every chunk is kept: check the whole file against its root, then move it into place."""
        bad = self.holdings.finish(fetch.descriptor)
        if bad:
            self._count("files_final_check_failed")
            for index in bad:
                fetch.swarm.lost(index)
            self._wake.set()
            return
        del self.fetches[fetch.descriptor.file_id]
        self.server.completed(fetch.descriptor.file_id, fetch.descriptor.root, fetch.swarm.chunks)
        fetch.done.set()
        self._count("files_completed")
        self.listeners.emit("file_complete", self.progress(fetch.descriptor.file_id))
