"""Threat 7: nothing readable on the wire, owner-only files, the control socket for its owner only.

Passphrase-locked key files are covered by tests/mesh/wire/test_identity.py and
tests/integration/test_cli_line.py; wrong bridge tokens by tests/crdt/test_bridge.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Any

import pytest

from crdt.bridge import bridge_token
from crdt.errors import NoteError
from mesh.runtime import control
from mesh.runtime.control import ControlServer, _same_user
from sim.hostile import TapProxy, befriend, linked, notes_of, start_daemon
from tests.conftest import wait_until

MARKER = "zebra-7f3c-secret-marker"


def note_text(notes: Any, note: str) -> str:
    try:
        return str(notes.cat(note))
    except NoteError:
        return ""  # not arrived yet


async def test_no_message_or_note_text_crosses_the_wire_in_the_clear(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path, "a")
    tap = TapProxy(a.node.listen_url or "")
    await tap.start()
    b = await start_daemon(tmp_path, "b", dial=[tap.address_for(a.node.address or "")])
    try:
        await wait_until(lambda: linked(a, b), what="a-b through the tap")
        await befriend(a, b)
        b.chat.send_direct(a.node.identity.peer_id, f"dm {MARKER}")
        room = a.chat.rooms.new(f"room {MARKER}")
        a.chat.rooms.invite(room, b.node.identity.peer_id)
        await wait_until(
            lambda: (
                room in [r["room_id"] for r in b.chat.rooms.all()]
                and b.chat.rooms.document_key(room, 0) is not None
            ),
            what="b joined",
        )
        note = notes_of(a).new(room, f"title {MARKER}")
        notes_of(a).append(note, f"body {MARKER}")
        notes_of(a).flush(note)
        await wait_until(
            lambda: (
                [m["text"] for m in a.chat.history(b.node.identity.peer_id)] == [f"dm {MARKER}"]
            ),
            what="the DM at a",
        )
        await wait_until(lambda: MARKER in note_text(notes_of(b), note), what="the note at b")
        tapped = bytes(tap.tapped)
        assert tap.messages > 10 and len(tapped) > 1000
        for needle in (MARKER, MARKER[::-1], "zebra"):
            assert needle.encode() not in tapped
            assert needle.encode("utf-16-le") not in tapped
    finally:
        await b.stop()
        await tap.stop()
        await a.stop()


async def test_files_holding_secrets_are_owner_only(tmp_path: Path) -> None:
    os.umask(0o022)  # a permissive umask must not leak into the files
    a = await start_daemon(tmp_path, "a")
    try:
        home = a.home.root
        bridge_token(home / "bridge.token")
        a.chat.rooms.new("writes")  # the WAL and shared-memory files exist once written
        names = [
            "identity.json",
            "meshnotes.db",
            "meshnotes.db-wal",
            "meshnotes.db-shm",
            "bridge.token",
            "control.sock",
        ]
        modes = {n: stat.S_IMODE((home / n).stat().st_mode) for n in names}
        assert modes == dict.fromkeys(names, 0o600), modes
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
    finally:
        await a.stop()


class _FakeSocket:
    def __init__(self, uid: int) -> None:
        self.uid = uid

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        assert (level, option) == (socket.SOL_SOCKET, socket.SO_PEERCRED)
        return struct.pack("3i", 4242, self.uid, self.uid)


class _FakeWriter:
    def __init__(self, uid: int) -> None:
        self.sock = _FakeSocket(uid)
        self.written = b""

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None

    def write(self, data: bytes) -> None:
        self.written += data

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


async def test_the_control_socket_refuses_other_users_by_peer_credentials(tmp_path: Path) -> None:
    """We cannot log in as another user here, so the uid check sees a faked SO_PEERCRED."""
    assert _same_user(_FakeWriter(os.getuid())) is True  # type: ignore[arg-type]
    assert _same_user(_FakeWriter(os.getuid() + 1)) is False  # type: ignore[arg-type]
    server = ControlServer(tmp_path / "control.sock")
    called = []

    async def status(args: dict[str, Any]) -> str:
        called.append(args)
        return "secret"

    server.register("status", status)
    writer = _FakeWriter(os.getuid() + 1)
    await server._serve(None, writer)  # type: ignore[arg-type]
    assert server.refused == 1 and writer.written == b"" and not called


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
async def test_another_user_cannot_even_open_the_control_socket(tmp_path: Path) -> None:
    a = await start_daemon(tmp_path, "a")
    try:
        path = str(a.control.path)
        pid = os.fork()
        if pid == 0:  # the child becomes "nobody" and tries to connect
            code = 3
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(path)
                code = 1
            except PermissionError:
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "another user reached the control socket"
        mine = await asyncio.to_thread(control.call, a.control.path, "id")  # the owner still can
        assert mine["peer_id"] == a.node.identity.peer_id
    finally:
        await a.stop()
