"""The control socket: how CLI verbs talk to a running node.

A Unix socket ``control.sock`` in the home directory, owner-only (0600, in a
0700 directory), that also checks the caller's uid. Each connection carries
one request and one reply, each a single line of JSON::

    -> {"cmd": "status", "args": {...}}
    <- {"ok": true, "result": ...}   or   {"ok": false, "error": "one clear line"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mesh.errors import MeshError, NodeNotRunningError, UsageError

log = logging.getLogger("meshnotes.control")

#: a request may carry a whole imported file
MAX_REQUEST = 16 * 1024 * 1024
Command = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlServer:
    """Serves registered commands on the home's control socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commands: dict[str, Command] = {}
        self._server: asyncio.AbstractServer | None = None
        self.refused = 0

    def register(self, name: str, command: Command) -> None:
        self.commands[name] = command

    async def start(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise UsageError(f"a node is already running for this home ({self.path.parent})")
            self.path.unlink()
        if len(os.fsencode(self.path)) >= 100:
            raise UsageError(f"the home path is too long for a control socket: {self.path}")
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for others
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not _same_user(writer):
                self.refused += 1
                return
            try:
                async with asyncio.timeout(10.0):
                    line = await reader.readline()
                reply = await self._dispatch(line)
            except (ValueError, asyncio.LimitOverrunError):
                reply = {"ok": False, "error": "request too large"}
            except TimeoutError:
                return
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            name = request["cmd"]
            args = request.get("args") or {}
            if not isinstance(name, str) or not isinstance(args, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "malformed control request"}
        command = self.commands.get(name)
        if command is None:
            return {"ok": False, "error": f"unknown command {name!r}"}
        try:
            return {"ok": True, "result": await command(args)}
        except MeshError as exc:
            return {"ok": False, "error": str(exc)}
        except (TypeError, ValueError, KeyError) as exc:
            return {"ok": False, "error": f"bad arguments for {name}: {exc}"}
        except Exception as exc:  # a bug: still one line for the client, the trace in the log
            log.exception("control command %s failed", name)
            return {"ok": False, "error": f"internal error in {name}: {exc!r}"}


def _same_user(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True  # platforms without peer credentials rely on the 0600 file mode
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def call(path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
    """Send one request to the node behind `path` and return its result (blocking).

    Raises NodeNotRunningError when nothing answers, and MeshError with the
    node's message when the command fails.
    """
    home = path.parent
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NodeNotRunningError(
                f"no node is running for {home}; start one with "
                f"'meshnotes --home {home} run --headless'"
            ) from exc
        except OSError as exc:
            raise NodeNotRunningError(f"cannot reach the node for {home}: {exc}") from exc
        try:
            sock.sendall(json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n")
            chunks: list[bytes] = []
            while not chunks or not chunks[-1].endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        except TimeoutError as exc:
            raise MeshError(f"the node for {home} did not answer within {timeout:g} s") from exc
        except OSError as exc:
            raise MeshError(f"lost the connection to the node for {home}: {exc}") from exc
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise MeshError(f"the node for {home} closed the control connection") from exc
    if not reply.get("ok"):
        raise MeshError(str(reply.get("error", "the node refused the request")))
    return reply.get("result")
