"""The Yjs bridge: any Yjs editor edits a note live, through the y-websocket protocol.

``meshnotes run --yjs-bridge 127.0.0.1:PORT`` serves
``ws://127.0.0.1:PORT/NOTE_ID?token=TOKEN`` on loopback only. The token is
per home (``meshnotes bridge-token``); a request without the right one is
refused before the websocket opens (HTTP 401), as is an unknown note (404).

On a connection the bridge speaks y-websocket: it sends SyncStep1 (its state
vector), answers the client's SyncStep1 with SyncStep2, applies the client's
SyncStep2 and Update messages, and passes awareness messages (cursors) on:
to the other clients of the same note and, as this peer's, to the note's room
over the mesh; the room's cursors come back the same way (crdt/awareness.py).
Updates from the client go to the mesh as local edits of this peer — the raw
update bytes, as received (see crdt/note.py); updates arriving from the mesh
go to every client as Update messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pycrdt
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from crdt.awareness import Cursors
from crdt.errors import NoteError, NoteUsageError
from crdt.notes import Notes
from mesh.wire.identity import write_private_file

log = logging.getLogger("meshnotes.bridge")

#: the largest y-websocket message accepted (a client's first SyncStep2 holds its whole doc)
MAX_MESSAGE = 16 * 1024 * 1024


def bridge_token(path: Path) -> str:
    """The home's bridge token, made (owner-only) on first use."""
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    write_private_file(path, token.encode() + b"\n")
    return token


def _sync_payload(message: bytes, at: int = 2) -> bytes:
    """The payload of a message: after its `at` type bytes (two for sync messages, one for
    awareness), a varuint length and exactly that.

    Strict, unlike ``pycrdt.read_message``, which fails with an assertion on
    an empty payload and silently shortens a truncated one. Raises ValueError.
    """
    length, shift, i = 0, 0, at
    while True:
        if i >= len(message) or shift > 63:
            raise ValueError("truncated sync message")
        byte = message[i]
        i += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    if len(message) - i != length:
        raise ValueError(f"a sync message says {length} bytes but holds {len(message) - i}")
    return message[i:]


class YjsBridge:
    """A loopback y-websocket server over this peer's notes."""

    def __init__(
        self, notes: Notes, host: str, port: int, token: str, cursors: Cursors | None = None
    ) -> None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:  # a host name ("localhost"): it could resolve to anything
            loopback = False
        if not loopback:
            raise NoteUsageError(
                f"the Yjs bridge listens on a loopback IP address (127.0.0.1, ::1) only, not {host}"
            )
        self.notes = notes
        self.host, self.port = host, port
        self.token = token
        self.clients: dict[str, set[ServerConnection]] = {}
        self.counters: dict[str, int] = {}
        self._server: Server | None = None
        self._sending: set[asyncio.Future[None]] = set()
        self.cursors = cursors
        notes.update_hooks.append(self._broadcast_update)
        if cursors is not None:
            cursors.hooks.append(self._broadcast_awareness)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    async def start(self) -> None:
        try:
            self._server = await serve(
                self._serve,
                self.host,
                self.port,
                compression=None,
                max_size=MAX_MESSAGE,
                process_request=self._check,
                server_header=None,
            )
        except OSError as exc:
            raise NoteUsageError(
                f"the Yjs bridge cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        log.info("yjs bridge listening on %s", self.url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def _note_of(self, path: str) -> str:
        return urlsplit(path).path.strip("/")

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse wrong tokens and unknown notes before the websocket opens."""
        query = parse_qs(urlsplit(request.path).query)
        given = (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            self._count("bridge_refused_token")
            return connection.respond(401, "a valid ?token= is required\n")
        try:
            self.notes.resolve(self._note_of(request.path))
        except NoteError:
            self._count("bridge_refused_note")
            return connection.respond(404, "no such note\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        note_id = self.notes.resolve(self._note_of(ws.request.path if ws.request else ""))
        note = self.notes.document(note_id)
        self.clients.setdefault(note_id, set()).add(ws)
        self._count("bridge_connections")
        try:
            await ws.send(pycrdt.create_sync_message(note.doc))
            async for message in ws:
                if isinstance(message, str) or not message:
                    raise ValueError("y-websocket messages are binary")
                await self._handle(ws, note_id, message)
        except (ValueError, IndexError, RuntimeError, NoteError) as exc:
            self._count("bridge_closed_malformed")
            log.info("closing a bridge client: %s", exc)
            await ws.close(1003, "malformed y-websocket message")
        except ConnectionClosed:
            pass
        finally:
            self.clients.get(note_id, set()).discard(ws)
            if self.cursors is not None:
                self.cursors.bridge_closed(note_id, ws)

    async def _handle(self, ws: ServerConnection, note_id: str, message: bytes) -> None:
        kind = message[0]
        if kind == pycrdt.YMessageType.SYNC:
            sync = message[1]
            if sync == pycrdt.YSyncMessageType.SYNC_STEP1:
                note = self.notes.document(note_id)
                state = _sync_payload(message)
                header = bytes([pycrdt.YMessageType.SYNC, pycrdt.YSyncMessageType.SYNC_STEP2])
                await ws.send(header + pycrdt.write_message(note.update_since(state)))
            elif sync in (pycrdt.YSyncMessageType.SYNC_STEP2, pycrdt.YSyncMessageType.SYNC_UPDATE):
                update = _sync_payload(message)
                if update != b"\x00\x00":  # an empty update
                    self.notes.apply_external(note_id, update, origin=ws)
            else:
                raise ValueError(f"unknown sync message type {sync}")
        elif kind == pycrdt.YMessageType.AWARENESS:
            update = _sync_payload(message, at=1)
            if self.cursors is not None:  # to the other clients (a hook), and to the mesh
                self.cursors.from_bridge(note_id, update, ws)
            else:
                self._broadcast_awareness(note_id, update, ws)
        else:
            raise ValueError(f"unknown y-websocket message type {kind}")

    def _broadcast_update(self, note_id: str, update: bytes, origin: object = None) -> None:
        self._broadcast(note_id, pycrdt.create_update_message(update), origin)

    def _broadcast_awareness(self, note_id: str, update: bytes, origin: object = None) -> None:
        self._broadcast(note_id, pycrdt.create_awareness_message(update), origin)

    def _broadcast(self, note_id: str, message: bytes, origin: object) -> None:
        """Send `message` to the note's clients but the one it came from."""
        clients = [c for c in self.clients.get(note_id, ()) if c is not origin]
        for client in clients:
            task = asyncio.ensure_future(self._send_quietly(client, message))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_quietly(self, client: ServerConnection, message: bytes) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.send(message)
