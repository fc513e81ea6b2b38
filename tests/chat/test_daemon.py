"""Tests for chat.daemon: the verbs a running node serves, called through the typed client."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat.client import ChatClient, Verb
from chat.daemon import Daemon
from crdt.client import Client, NoteVerb
from crdt.service import NotesService
from mesh.errors import MeshError, UsageError
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig


def daemon_in(root: Path, name: str) -> Daemon:
    home = Home(root / name)
    config = NodeConfig(listen=("127.0.0.1", 0), auto_connect=False)
    return Daemon(home, home.create_identity(name), config, extensions=[NotesService()])


@pytest.fixture
async def daemon() -> AsyncIterator[Daemon]:
    root = Path(tempfile.mkdtemp(prefix="mn-daemon-"))  # a socket path must stay short
    async with daemon_in(root, "A") as served:
        yield served
    shutil.rmtree(root, ignore_errors=True)


def test_the_chat_is_there_only_once_started(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not started"):
        daemon_in(tmp_path, "A").chat  # noqa: B018


async def test_every_verb_is_served_under_its_one_name(daemon: Daemon) -> None:
    assert set(daemon.control.commands) == {*Verb, *NoteVerb}
    assert "room.handover" in daemon.control.commands  # the names on the wire


async def test_the_client_reaches_the_node_and_its_chat(daemon: Daemon) -> None:
    client = ChatClient(daemon.control.path)
    me = await asyncio.to_thread(client.identity)
    assert (me["peer_id"], me["name"]) == (daemon.node.identity.peer_id, "A")
    assert me["address"] == daemon.node.address
    assert me["addresses"][0] == daemon.node.address  # loopback only: the one address there is
    room = (await asyncio.to_thread(client.room_new, "plans"))["room_id"]
    [listed] = await asyncio.to_thread(client.room_list)
    assert listed["room_id"] == room and listed["state"] == "joined"
    msg_id = (await asyncio.to_thread(client.say, "plans", "hello"))["id"]
    [message] = await asyncio.to_thread(client.history, "plans")
    assert message["id"] == msg_id and message["text"] == "hello"
    status = await asyncio.to_thread(client.status)
    assert status["chat"]["outbox"] == 0 and status["notes"] is not None


async def test_the_notes_verbs_go_through_the_same_client(daemon: Daemon) -> None:
    client = Client(daemon.control.path)
    await asyncio.to_thread(client.room_new, "plans")
    note_id = (await asyncio.to_thread(client.note_new, "plans", "todo"))["note_id"]
    await asyncio.to_thread(client.note_append, "todo", "milk")
    assert await asyncio.to_thread(client.note_cat, note_id) == {"note_id": note_id, "text": "milk"}


async def test_a_refused_verb_is_the_chat_layers_one_line(daemon: Daemon) -> None:
    client = ChatClient(daemon.control.path)
    with pytest.raises(MeshError, match="no room matches 'nowhere'"):
        await asyncio.to_thread(client.say, "nowhere", "hello")
    with pytest.raises(MeshError, match="--count must be"):
        await asyncio.to_thread(client.ping, daemon.node.identity.peer_id, 0, 0.0, 1.0)
