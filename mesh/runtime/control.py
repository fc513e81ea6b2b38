"""The control socket: how CLI verbs talk to a running node.

A Unix socket ``control.sock`` in the home directory, owner-only (0600, in a
0700 directory), that also checks the caller's uid. Each connection carries
one request and one reply, each a single line of JSON::

    -> {"cmd": "status", "args": {...}}
    <- {"ok": true, "result": ...}   or   {"ok": false, "error": "one clear line"}

One request is different: ``subscribe`` (where the node serves events) keeps
its connection open. After its reply the node writes one line per event,
``{"event": KIND, "source": "chat"|"notes"|"node", "data": {...}}``, and the
client may write lines ``{"topics": [...]}`` naming the topics it follows
(events published under a topic, a note's updates say, go only to the
subscribers following it). A subscriber that falls ``MAX_QUEUED`` events
behind is cut off with a last ``{"event": "overrun"}`` line and counted
(``control_events_overrun``): it reads what it missed from the database.
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
#: events a subscriber may fall behind by before it is cut off
MAX_QUEUED = 10_000
#: the verb of the event stream
SUBSCRIBE = "subscribe"
Command = Callable[[dict[str, Any]], Awaitable[Any]]


class Subscription:
    """One client's event stream: a bounded queue of encoded lines, and the topics it follows."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.topics: set[str] = set()
        self.overrun = False

    def offer(self, line: bytes) -> bool:
        """Queue one event line; False (and the stream ends) when the client is too far behind."""
        if self.overrun:
            return False
        if self.queue.qsize() >= MAX_QUEUED:
            self.overrun = True
            self.queue.put_nowait(json.dumps({"event": "overrun"}).encode() + b"\n")
            self.queue.put_nowait(None)
            return False
        self.queue.put_nowait(line)
        return True


class ControlServer:
    """Serves registered commands on the home's control socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commands: dict[str, Command] = {}
        self._server: asyncio.AbstractServer | None = None
        self.refused = 0
        self.subscriptions: set[Subscription] = set()
        self.counters: dict[str, int] = {}

    def register(self, name: str, command: Command) -> None:
        self.commands[name] = command

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def publish(
        self, source: str, kind: str, data: dict[str, Any], topic: str | None = None
    ) -> None:
        """Send an event to every subscriber (only to those following `topic`, if given)."""
        if not self.subscriptions:
            return
        try:
            line = json.dumps({"event": kind, "source": source, "data": data}).encode() + b"\n"
        except (TypeError, ValueError):
            self._count("control_events_unencodable")
            log.warning("an event %s/%s cannot be encoded for subscribers", source, kind)
            return
        for subscription in list(self.subscriptions):
            if topic is not None and topic not in subscription.topics:
                continue
            if not subscription.offer(line):
                self.subscriptions.discard(subscription)
                self._count("control_events_overrun")

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
        for subscription in self.subscriptions:
            subscription.queue.put_nowait(None)  # end the open streams: the server can close
        self.subscriptions.clear()
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
            name, args = "", dict[str, Any]()
            try:
                async with asyncio.timeout(10.0):
                    line = await reader.readline()
                reply, name, args = await self._request(line)
            except (ValueError, asyncio.LimitOverrunError):
                reply = {"ok": False, "error": "request too large"}
            except TimeoutError:
                return
            subscription = None
            topics = args.get("topics") or []
            if name == SUBSCRIBE and reply["ok"] and not isinstance(topics, list):
                reply = {"ok": False, "error": "bad arguments for subscribe: topics is a list"}
            if name == SUBSCRIBE and reply["ok"]:
                # from its reply on, it hears every event (and those of the topics it names)
                subscription = Subscription()
                subscription.topics = {str(t) for t in topics}
                self.subscriptions.add(subscription)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            if subscription is not None:
                await self._stream(subscription, reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stream(
        self, subscription: Subscription, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Write a subscriber's events until it hangs up (or falls too far behind), reading the
        topics it follows meanwhile."""
        follow = asyncio.create_task(self._follow(subscription, reader))
        try:
            while (line := await subscription.queue.get()) is not None:
                writer.write(line)
                await writer.drain()
        finally:
            self.subscriptions.discard(subscription)
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow

    async def _follow(self, subscription: Subscription, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ValueError, asyncio.LimitOverrunError, ConnectionError, OSError):
            while line := await reader.readline():
                try:
                    topics = json.loads(line)["topics"]
                    subscription.topics = {str(t) for t in topics}
                except (ValueError, KeyError, TypeError):
                    self._count("control_events_bad_line")
        subscription.queue.put_nowait(None)  # the client hung up: end the stream

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line."""
        reply, _name, _args = await self._request(line)
        return reply

    async def _request(self, line: bytes) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """The reply to one request line, and the command and arguments it named."""
        try:
            request = json.loads(line)
            name = request["cmd"]
            args = request.get("args") or {}
            if not isinstance(name, str) or not isinstance(args, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "malformed control request"}, "", {}
        command = self.commands.get(name)
        if command is None:
            return {"ok": False, "error": f"unknown command {name!r}"}, name, args
        try:
            return {"ok": True, "result": await command(args)}, name, args
        except MeshError as exc:
            return {"ok": False, "error": str(exc)}, name, args
        except (TypeError, ValueError, KeyError) as exc:
            return {"ok": False, "error": f"bad arguments for {name}: {exc}"}, name, args
        except Exception as exc:  # a bug: still one line for the client, the trace in the log
            log.exception("control command %s failed", name)
            return {"ok": False, "error": f"internal error in {name}: {exc!r}"}, name, args


def _same_user(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True  # platforms without peer credentials rely on the 0600 file mode
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def _answers(path: Path) -> bool:
    """Whether something holds the socket: only a missing file or a refusal says nothing does
    (a full backlog, say, means a holder that does not accept, such as ``passphrase``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except OSError:
            return True
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
        except OSError as exc:
            raise _not_running(home, exc) from exc
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
    return _result(b"".join(chunks), home)


def _not_running(home: Path, exc: OSError) -> NodeNotRunningError:
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return NodeNotRunningError(
            f"no node is running for {home}; start one with "
            f"'meshnotes --home {home} run --headless'"
        )
    return NodeNotRunningError(f"cannot reach the node for {home}: {exc}")


def _result(line: bytes, home: Path) -> Any:
    """The result in a reply line, or the node's refusal as a MeshError."""
    try:
        reply = json.loads(line)
    except ValueError as exc:
        raise MeshError(f"the node for {home} closed the control connection") from exc
    if not reply.get("ok"):
        raise MeshError(str(reply.get("error", "the node refused the request")))
    return reply.get("result")


async def request(
    path: Path, cmd: str, args: dict[str, Any] | None = None, timeout: float = 30.0
) -> Any:
    """As :func:`call`, without blocking the event loop."""
    home = path.parent
    try:
        async with asyncio.timeout(timeout):
            try:
                reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_REQUEST)
            except OSError as exc:
                raise _not_running(home, exc) from exc
            try:
                writer.write(json.dumps({"cmd": cmd, "args": args or {}}).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
    except TimeoutError as exc:
        raise MeshError(f"the node for {home} did not answer within {timeout:g} s") from exc
    except (ValueError, asyncio.LimitOverrunError) as exc:
        raise MeshError(f"the node for {home} sent a reply too large") from exc
    except (ConnectionError, OSError) as exc:
        raise MeshError(f"lost the connection to the node for {home}: {exc}") from exc
    return _result(line, home)


class Events:
    """A node's event stream, as :func:`subscribe` opens it: iterate it for events (dicts
    ``{"event", "source", "data"}``); it ends when the node stops or cuts it off."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: Any
    ) -> None:
        self.hello = hello
        self._reader = reader
        self._writer = writer

    def follow(self, topics: set[str]) -> None:
        """Follow these topics from now on (and no others). A line this small is not held
        back by the socket's buffer: it goes without waiting."""
        if not self._writer.is_closing():
            self._writer.write(json.dumps({"topics": sorted(topics)}).encode() + b"\n")

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            line = await self._reader.readline()
        except (ValueError, asyncio.LimitOverrunError, ConnectionError, OSError):
            line = b""
        if not line:
            raise StopAsyncIteration
        try:
            event = json.loads(line)
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                return event
        except ValueError:
            pass
        raise StopAsyncIteration  # not the node's protocol: the stream is over

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


async def subscribe(path: Path, topics: set[str] | None = None, timeout: float = 10.0) -> Events:
    """Open the event stream of the node behind `path` (its reply to ``subscribe`` is
    :attr:`Events.hello`)."""
    home = path.parent
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_REQUEST)
            request = {"cmd": SUBSCRIBE, "args": {"topics": sorted(topics or ())}}
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
    except TimeoutError as exc:
        raise MeshError(f"the node for {home} did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise _not_running(home, exc) from exc
    try:
        hello = _result(line, home)
    except MeshError:
        writer.close()
        raise
    return Events(reader, writer, hello)
