"""Tests for mesh.runtime.control: one JSON request and one reply per connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
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


# -- the event stream ------------------------------------------------------------------


async def subscribed(server: ControlServer, topics: set[str] | None = None) -> control.Events:
    async def hello(args: dict[str, Any]) -> dict[str, Any]:
        return {"peer_id": "me"}

    server.register(control.SUBSCRIBE, hello)
    events = await control.subscribe(server.path, topics)
    await wait_for_subscribers(server, 1)
    return events


async def wait_for_subscribers(server: ControlServer, count: int) -> None:
    for _ in range(500):
        if len(server.subscriptions) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(server.subscriptions)} subscribers, not {count}")


async def next_event(events: control.Events) -> dict[str, Any]:
    return await asyncio.wait_for(anext(events), 10)


async def test_a_subscriber_hears_events_in_order_and_only_the_topics_it_follows(
    server: ControlServer,
) -> None:
    events = await subscribed(server, {"note-1"})
    assert events.hello == {"peer_id": "me"}
    server.publish("chat", "message", {"n": 1})
    server.publish("notes", "note_update", {"n": 2}, topic="note-2")  # not followed
    server.publish("notes", "note_update", {"n": 3}, topic="note-1")
    assert [(await next_event(events))["data"]["n"] for _ in range(2)] == [1, 3]
    events.follow({"note-2"})
    for _ in range(500):  # the new topics take effect once the node has read them
        if next(iter(server.subscriptions)).topics == {"note-2"}:
            break
        await asyncio.sleep(0.01)
    server.publish("notes", "note_update", {"n": 4}, topic="note-1")
    server.publish("notes", "note_update", {"n": 5}, topic="note-2")
    event = await next_event(events)
    assert (event["source"], event["event"], event["data"]) == ("notes", "note_update", {"n": 5})
    await events.close()
    await wait_for_subscribers(server, 0)


async def test_a_subscriber_too_far_behind_is_cut_off_and_counted(
    server: ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "MAX_QUEUED", 5)
    events = await subscribed(server)
    for n in range(20):  # all at once: the stream cannot drain in between
        server.publish("chat", "message", {"n": n})
    seen = [event async for event in events]
    assert seen[-1]["event"] == "overrun"
    assert [e["data"]["n"] for e in seen[:-1]] == list(range(5))
    assert server.counters["control_events_overrun"] == 1
    assert not server.subscriptions


async def test_an_event_that_cannot_be_encoded_is_counted_not_sent(
    server: ControlServer,
) -> None:
    events = await subscribed(server)
    server.publish("chat", "message", {"raw": b"\x00"})
    server.publish("chat", "message", {"n": 1})
    assert (await next_event(events))["data"] == {"n": 1}
    assert server.counters["control_events_unencodable"] == 1
    await events.close()


async def test_the_stream_ends_when_the_node_stops(server: ControlServer) -> None:
    events = await subscribed(server)
    await server.stop()
    assert [event async for event in events] == []


async def test_a_subscribe_to_no_node_says_so() -> None:
    root = Path(tempfile.mkdtemp(prefix="mn-ctl-"))
    try:
        with pytest.raises(NodeNotRunningError, match="no node is running"):
            await control.subscribe(root / "control.sock")
        with pytest.raises(NodeNotRunningError):
            await control.request(root / "control.sock", "status")
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_an_async_request_gets_the_result_or_the_refusal(server: ControlServer) -> None:
    assert await control.request(server.path, "echo", {"x": 1}) == {"echo": {"x": 1}}
    with pytest.raises(MeshError, match="no such room"):
        await control.request(server.path, "refuse")


def test_a_socket_held_by_one_that_does_not_accept_counts_as_running() -> None:
    """`meshnotes passphrase` holds the socket without accepting: once its backlog is full a
    connect fails with EAGAIN, which must not read as a stale socket a node may take over."""
    root = Path(tempfile.mkdtemp(prefix="mn-ctl-"))
    path = root / "control.sock"
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    queued: list[socket.socket] = []
    try:
        holder.bind(str(path))
        holder.listen(1)
        for _ in range(4):  # fill the backlog
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(str(path))
            queued.append(sock)
        assert control._answers(path)
        with pytest.raises(UsageError, match="already running"):
            asyncio.run(ControlServer(path).start())
        assert path.exists()
    finally:
        for sock in queued:
            sock.close()
        holder.close()
        shutil.rmtree(root, ignore_errors=True)


async def test_a_subscribe_with_topics_that_are_not_a_list_is_one_clear_error(
    server: ControlServer,
) -> None:
    async def hello(args: dict[str, Any]) -> dict[str, Any]:
        return {}

    server.register(control.SUBSCRIBE, hello)
    reply = await raw(server, b'{"cmd": "subscribe", "args": {"topics": 5}}\n')
    assert json.loads(reply) == {
        "ok": False,
        "error": "bad arguments for subscribe: topics is a list",
    }
    assert not server.subscriptions
