"""Fuzz targets for what a local client sends: control requests, the control socket,
the Yjs bridge (see tests/hardening/fuzz.py)."""

from __future__ import annotations

import asyncio
import json
import random
import string
import tempfile
from pathlib import Path
from typing import Any

import pycrdt

from chat.daemon import Daemon
from crdt.bridge import YjsBridge
from crdt.errors import NoteError
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.identity import encode_peer_id
from tests.hardening.fuzzing import Target, mutate, random_bytes, random_value


class _DaemonTarget(Target):
    """A real daemon on a temporary home (control socket and notes), for the local decoders."""

    is_async = True

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="mn-fuzz-", dir="/tmp")
        home = Home(Path(self.tmp.name) / "h")
        identity = home.create_identity("fuzz")
        self.service = NotesService()
        self.daemon = Daemon(
            home,
            identity,
            NodeConfig(listen=("127.0.0.1", 0), auto_connect=False),
            extensions=[self.service],
        )
        loop.run_until_complete(self.daemon.start())

    def teardown(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.daemon.stop())
        self.tmp.cleanup()


#: commands left out of control fuzzing: `ping` waits by design (up to count x timeout),
#: `connect` would dial whatever address the fuzzer made up (not only loopback)
SLOW_OR_OUTBOUND = {"ping", "connect"}


class ControlRequest(_DaemonTarget):
    """Control-socket request lines into ControlServer._dispatch, on a running daemon."""

    name = "control_request"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        super().setup(loop)
        self.commands = sorted(set(self.daemon.control.commands) - SLOW_OR_OUTBOUND)

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.6:
            args = {
                rng.choice(
                    (
                        "peer",
                        "text",
                        "room",
                        "name",
                        "note",
                        "title",
                        "limit",
                        "conversation",
                        "count",
                        "verified",
                        random_value(rng).__class__.__name__,
                    )
                ): _json_value(rng)
                for _ in range(rng.randrange(4))
            }
            request: Any = {"cmd": rng.choice((*self.commands, "nope", 7)), "args": args}
            if rng.random() < 0.1:
                request["args"] = _json_value(rng)
            return json.dumps(request).encode()
        if roll < 0.8:
            return json.dumps(_json_value(rng)).encode()
        return random_bytes(rng)

    async def check(self, case: bytes) -> str:
        reply = await self.daemon.control._dispatch(case)
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool)
        json.dumps(reply)  # the reply must be sendable
        if reply["ok"]:
            return "accepted"
        error = str(reply["error"])
        assert error and "\n" not in error, f"not one clear line: {error!r}"
        return "refused"


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return rng.randint(-(2**70), 2**70) if rng.random() < 0.2 else rng.randint(-2, 20)
    if kind == 1:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(30)))
    if kind == 2:
        return None
    if kind == 3:
        return rng.random() < 0.5
    if kind == 4:
        return rng.choice((0.5, 1e300, -0.0))
    if kind == 5:
        return encode_peer_id(rng.randbytes(32))[: rng.choice((52, 8, 3))]
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(rng.randrange(5)): _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


class ControlSocket(_DaemonTarget):
    """Raw bytes on the real control socket: a JSON error line back, or a close; never a crash."""

    name = "control_socket"

    def generate(self, rng: random.Random) -> bytes:
        roll = rng.random()
        if roll < 0.5:
            return random_bytes(rng, 600)
        if roll < 0.8:
            return mutate(rng, b'{"cmd": "status", "args": {}}\n')
        return b'{"cmd": "id"}\n' + random_bytes(rng)

    async def check(self, case: bytes) -> str:
        path = str(self.daemon.control.path)
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(case)
            await writer.drain()
            writer.write_eof()
            reply = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
        assert reply.endswith(b"\n") and reply.count(b"\n") == 1, reply[:200]
        answer = json.loads(reply)
        return "accepted" if answer["ok"] else "refused"


class _FakeClient:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, message: bytes) -> None:
        self.sent.append(message)


class BridgeMessage(_DaemonTarget):
    """y-websocket messages into YjsBridge._handle (the exceptions _serve turns into 1003)."""

    name = "bridge"

    def setup(self, loop: asyncio.AbstractEventLoop) -> None:
        super().setup(loop)
        notes = self.service.notes
        assert notes is not None
        room = self.daemon.chat.rooms.new("fuzz")
        self.note_id = notes.new(room, "fuzz")
        self.bridge = YjsBridge(notes, "127.0.0.1", 0, "token")
        self.client = _FakeClient()
        doc: pycrdt.Doc[Any] = pycrdt.Doc()
        doc.get("body", type=pycrdt.Text).insert(0, "hello")
        self.update = bytes(doc.get_update())
        self.state = bytes(doc.get_state())

    def generate(self, rng: random.Random) -> bytes:
        valid = rng.choice(
            (
                pycrdt.create_update_message(self.update),
                bytes([0, 0]) + pycrdt.write_message(self.state),
                bytes([0, 1]) + pycrdt.write_message(self.update),
                bytes([1]) + pycrdt.write_message(b"{}"),
            )
        )
        roll = rng.random()
        if roll < 0.6:
            return mutate(rng, valid)
        if roll < 0.8:  # a well-framed message around a damaged body
            body = mutate(rng, rng.choice((self.update, self.state)))
            return bytes([0, rng.randrange(4)]) + pycrdt.write_message(body)
        return random_bytes(rng) or b"\x00"

    async def check(self, case: bytes) -> str:
        try:
            await self.bridge._handle(self.client, self.note_id, case)  # type: ignore[arg-type]
        except (ValueError, IndexError, RuntimeError, NoteError):
            return "closed_malformed"
        finally:
            self.client.sent.clear()
            # flush the coalesced local edit the update may have started
            self.bridge.notes.flush(self.note_id)
        return "accepted"
