"""Tests for crdt.service: the note verbs a running node serves, through the control client."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat.daemon import Daemon
from crdt.client import Client
from crdt.service import NotesService
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    root = Path(tempfile.mkdtemp(prefix="mn-service-"))  # a socket path must stay short
    home = Home(root / "A")
    config = NodeConfig(listen=("127.0.0.1", 0), auto_connect=False)
    daemon = Daemon(home, home.create_identity("A"), config, extensions=[NotesService()])
    async with daemon:
        yield Client(daemon.control.path)
    shutil.rmtree(root, ignore_errors=True)


async def test_note_append_starts_a_new_line_unless_the_note_ends_with_one(
    client: Client,
) -> None:
    await asyncio.to_thread(client.room_new, "plans")
    await asyncio.to_thread(client.note_new, "plans", "todo")
    for text in ("- ship it", "- carol: tests first", "- done\n", "- next"):
        await asyncio.to_thread(client.note_append, "todo", text)
    result = await asyncio.to_thread(client.note_cat, "todo")
    assert result["text"] == "- ship it\n- carol: tests first\n- done\n- next"
