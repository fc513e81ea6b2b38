"""The Yjs bridge: y-websocket clients edit a note of a running daemon, over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pycrdt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chat.daemon import Daemon
from crdt.bridge import YjsBridge
from crdt.errors import NoteUsageError
from crdt.notes import Notes
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.link import LinkConfig
from tests.conftest import wait_until

SYNC, AWARENESS = pycrdt.YMessageType.SYNC, pycrdt.YMessageType.AWARENESS
STEP1, STEP2 = pycrdt.YSyncMessageType.SYNC_STEP1, pycrdt.YSyncMessageType.SYNC_STEP2


@dataclass
class Served:
    daemon: Daemon
    notes: Notes
    bridge: YjsBridge
    note_id: str

    def url(self, note: str | None = None, token: str | None = None) -> str:
        token = self.bridge.token if token is None else token
        query = f"?token={token}" if token else ""
        return f"{self.bridge.url}/{self.note_id if note is None else note}{query}"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A daemon with the bridge on a free loopback port, and one note in a room of one."""
    home = Home(tmp_path / "A")
    config = NodeConfig(
        auto_connect=False,
        link=LinkConfig(handshake_timeout=2.0, heartbeat_interval=1.0, idle_timeout=5.0),
    )
    service = NotesService(bridge=("127.0.0.1", 0))
    daemon = Daemon(home, home.create_identity("A"), config, extensions=[service])
    await daemon.start()
    try:
        assert service.notes is not None and service.bridge is not None
        room = daemon.chat.rooms.new("team")
        note_id = service.notes.new(room, "plans")
        service.notes.append(note_id, "début: ")
        yield Served(daemon, service.notes, service.bridge, note_id)
    finally:
        await daemon.stop()


class Channel:
    """A websockets client connection as a pycrdt Channel; iteration ends when it closes."""

    def __init__(self, ws: ClientConnection, path: str) -> None:
        self.ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    async def send(self, message: bytes) -> None:
        await self.ws.send(message)

    async def recv(self) -> bytes:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None
        assert isinstance(message, bytes)
        return message

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> bytes:
        return await self.recv()


async def next_of_type(ws: ClientConnection, kind: int) -> bytes:
    """The next message of a y-websocket type, skipping the others (sync on connect)."""
    while True:
        message = await ws.recv()
        assert isinstance(message, bytes)
        if message[0] == kind:
            return message


async def closed_code(ws: ClientConnection) -> int | None:
    """Read until the server closes the connection; its close code."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed:
        pass
    return ws.close_code


# -- refusals ----------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "wrong-token"])
async def test_a_missing_or_wrong_token_is_refused_with_401(served: Served, token: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(served.url(token=token)):
            pass
    assert refused.value.response.status_code == 401
    assert served.bridge.counters["bridge_refused_token"] == 1
    assert "bridge_connections" not in served.bridge.counters


async def test_an_unknown_note_is_refused_with_404(served: Served) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(served.url(note="nosuchnote")):
            pass
    assert refused.value.response.status_code == 404
    assert served.bridge.counters["bridge_refused_note"] == 1


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "localhost"])
async def test_the_bridge_refuses_a_host_that_is_not_a_loopback_address(
    served: Served, host: str
) -> None:
    with pytest.raises(NoteUsageError, match="loopback"):
        YjsBridge(served.notes, host, 0, "token")


# -- sync ----------------------------------------------------------------------


async def test_a_yjs_client_syncs_edits_both_ways(served: Served) -> None:
    notes, note_id = served.notes, served.note_id
    sent_before = notes.counters.get("notes_sent", 0)
    doc: pycrdt.Doc[object] = pycrdt.Doc()
    body = doc.get("body", type=pycrdt.Text)
    meta = doc.get("meta", type=pycrdt.Map)
    async with (
        connect(served.url(), compression=None) as ws,
        pycrdt.Provider(doc, Channel(ws, note_id)) as provider,
    ):
        await wait_until(provider.synced.is_set, what="the client's initial sync")
        assert str(body) == "début: " and meta["title"] == "plans"

        body += "écrit dans Yjs ✓"  # the client's edit lands in the note
        await wait_until(lambda: notes.cat(note_id) == "début: écrit dans Yjs ✓", what="in note")
        notes.flush(note_id)  # and goes to the mesh as this peer's edit
        assert notes.counters["notes_sent"] == sent_before + 1

        notes.append(note_id, " — et 😀")  # an edit on the note reaches the client
        await wait_until(
            lambda: str(body) == "début: écrit dans Yjs ✓ — et 😀", what="the note's edit"
        )
    assert served.bridge.counters["bridge_connections"] == 1


async def test_awareness_reaches_the_other_clients_of_the_note_only(served: Served) -> None:
    async with connect(served.url()) as first, connect(served.url()) as second:
        for ws in (first, second):  # each is registered once it got its SyncStep1
            assert (await next_of_type(ws, SYNC))[1] == STEP1
        hello = pycrdt.create_awareness_message(b'\x01\x07\x01\x0c{"user":"A"}')
        await first.send(hello)
        assert await next_of_type(second, AWARENESS) == hello
        answer = pycrdt.create_awareness_message(b'\x01\x08\x01\x0c{"user":"B"}')
        await second.send(answer)
        assert await next_of_type(first, AWARENESS) == answer  # not its own echoed first


# -- malformed messages ------------------------------------------------------------

MALFORMED: list[str | bytes] = [
    "a text frame",
    b"",
    b"\x07\x00\x00",  # an unknown message type
    b"\x00",  # a sync message without its type
    b"\x00\x09\x00",  # an unknown sync message type
    b"\x00\x02",  # an update without its length
    b"\x00\x02\x80",  # a length cut short
    b"\x00\x01\x05ab",  # says 5 bytes, holds 2
    b"\x00\x00\x05\x00",  # a state vector cut short
    b"\x00\x02" + pycrdt.write_message(b"not an update"),  # undecodable
]


async def test_malformed_messages_close_with_1003_and_the_bridge_goes_on(served: Served) -> None:
    for n, message in enumerate(MALFORMED, start=1):
        async with connect(served.url()) as ws:
            assert (await next_of_type(ws, SYNC))[1] == STEP1
            await ws.send(message)
            assert await closed_code(ws) == 1003, message
        assert served.bridge.counters["bridge_closed_malformed"] == n
    assert served.notes.cat(served.note_id) == "début: "

    # still serving: a well-behaved client syncs
    async with connect(served.url()) as ws:
        await ws.send(pycrdt.create_sync_message(pycrdt.Doc()))
        step2 = await next_of_type(ws, SYNC)
        while step2[1] != STEP2:
            step2 = await next_of_type(ws, SYNC)
        client: pycrdt.Doc[object] = pycrdt.Doc()
        body = client.get("body", type=pycrdt.Text)
        client.apply_update(pycrdt.read_message(step2[2:]))
        assert str(body) == "début: "
