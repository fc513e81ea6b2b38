"""Tests for mesh.runtime.control: one JSON request and one reply per connection."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mesh.errors import MeshError, NodeNotRunningError, UsageError
from mesh.runtime import control
from mesh.runtime.control import ControlServer


@pytest.fixture
async def server() -> AsyncIterator[ControlServer]:
    root = Path(tempfile.mkdtemp(prefix="mn-ctl-"))  # a socket path must stay short
    served = ControlServer(root / "control.sock")

    async def echo(args: dict[str, Any]) -> dict[str, Any]:
        return {"echo": args}

    async def refuse(args: dict[str, Any]) -> None:
        raise UsageError("no such room")

    async def needs(args: dict[str, Any]) -> int:
        return int(args["count"])

    async def bug(args: dict[str, Any]) -> None:
        raise RuntimeError("oops")

    for name, command in {"echo": echo, "refuse": refuse, "needs": needs, "bug": bug}.items():
        served.register(name, command)
    await served.start()
    yield served
    await served.stop()
    shutil.rmtree(root, ignore_errors=True)


async def call(server: ControlServer, cmd: str, args: dict[str, Any] | None = None) -> Any:
    return await asyncio.to_thread(control.call, server.path, cmd, args, 10)


async def raw(server: ControlServer, line: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(line)
    await writer.drain()
    reply = await reader.readline()
    writer.close()
    return reply


async def test_a_command_gets_its_arguments_and_its_result_comes_back(
    server: ControlServer,
) -> None:
    assert await call(server, "echo", {"a": [1, "b"]}) == {"echo": {"a": [1, "b"]}}
    assert server.path.stat().st_mode & 0o777 == 0o600


async def test_a_refused_command_is_its_one_line_message(server: ControlServer) -> None:
    with pytest.raises(MeshError, match=r"^no such room$"):
        await call(server, "refuse")


async def test_unknown_commands_and_bad_arguments_are_named(server: ControlServer) -> None:
    with pytest.raises(MeshError, match="unknown command 'nope'"):
        await call(server, "nope")
    with pytest.raises(MeshError, match="bad arguments for needs"):
        await call(server, "needs", {"count": "many"})


async def test_a_bug_in_a_command_is_one_line_and_the_server_goes_on(
    server: ControlServer,
) -> None:
    with pytest.raises(MeshError, match="internal error in bug: RuntimeError"):
        await call(server, "bug")
    assert await call(server, "echo") == {"echo": {}}


@pytest.mark.parametrize("line", [b"not json\n", b'{"args": {}}\n', b'{"cmd": 1}\n'])
async def test_a_malformed_request_is_refused(server: ControlServer, line: bytes) -> None:
    assert await raw(server, line) == b'{"ok": false, "error": "malformed control request"}\n'


async def test_a_second_server_on_the_same_socket_is_refused(server: ControlServer) -> None:
    with pytest.raises(UsageError, match="already running"):
        await ControlServer(server.path).start()


def test_calling_a_home_without_a_node_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(NodeNotRunningError, match=r"no node is running for .* run --headless"):
        control.call(tmp_path / "control.sock", "status")
