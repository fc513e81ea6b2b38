"""Baselines for figure 3: pycrdt applying the trace locally; pycrdt-websocket and the
y-websocket reference server relaying it.

    python -m benchmarks.ybaseline server
    python -m benchmarks.ybaseline wait --url ws://.../ROOM
    python -m benchmarks.ybaseline type --url ws://.../ROOM

pycrdt-websocket (optional: `pip install pycrdt-websocket`) runs its
WebsocketServer, or `y-websocket@1.5` runs under node (benchmarks/ywebsocket.py);
two pycrdt `Provider` clients connect to one room in separate processes: one
types the trace as fast as it can (yielding to its event loop every 256
transactions, as benchmarks.node does), the other reports when its copy holds
the final text.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from typing import Any

import pycrdt
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from benchmarks.common import PY, Cluster, load_trace
from benchmarks.ywebsocket import reference_server


def apply_trace(text: pycrdt.Text, doc: pycrdt.Doc, txns: list[dict[str, Any]]) -> None:
    for txn in txns:
        with doc.transaction():
            for pos, deleted, inserted in txn["patches"]:
                if deleted:
                    del text[pos : pos + deleted]
                if inserted:
                    text.insert(pos, inserted)


def pycrdt_local(trace: dict[str, Any]) -> float:
    """Seconds for pycrdt to apply the whole trace in one process, one transaction per edit."""
    doc: pycrdt.Doc = pycrdt.Doc()
    text = doc.get("body", type=pycrdt.Text)
    t0 = time.perf_counter()
    apply_trace(text, doc, trace["txns"])
    elapsed = time.perf_counter() - t0
    assert str(text) == trace["endContent"]
    return elapsed


class _Channel:
    """pycrdt's Channel protocol over a `websockets` connection."""

    def __init__(self, ws: Any, path: str) -> None:
        self.ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except Exception as exc:  # connection closed
            raise StopAsyncIteration from exc

    async def send(self, message: bytes) -> None:
        await self.ws.send(message)

    async def recv(self) -> bytes:
        return bytes(await self.ws.recv(decode=False))


async def _server() -> None:
    from pycrdt.websocket import WebsocketServer

    async with WebsocketServer(rooms_ready=True, auto_clean_rooms=False) as ys:

        async def handler(ws: Any) -> None:
            await ys.serve(_Channel(ws, ws.request.path))

        async with serve(
            handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None
        ) as srv:
            port = next(iter(srv.sockets)).getsockname()[1]
            print(f"listening on ws://127.0.0.1:{port}", flush=True)
            await asyncio.Future()


async def _client(url: str, mode: str) -> None:
    trace = load_trace()
    edits = int(os.environ.get("YBASELINE_EDITS", len(trace["txns"])))
    trace["txns"] = trace["txns"][:edits]
    if edits < 259778:
        ref: pycrdt.Doc = pycrdt.Doc()
        rtext = ref.get("body", type=pycrdt.Text)
        apply_trace(rtext, ref, trace["txns"])
        trace["endContent"] = str(rtext)
    final = trace["endContent"]
    doc: pycrdt.Doc = pycrdt.Doc()
    text = doc.get("body", type=pycrdt.Text)
    ws_options = {"compression": None, "max_size": None, "ping_interval": None}
    async with (
        connect(url, **ws_options) as ws,
        pycrdt.Provider(doc, _Channel(ws, url.rsplit("/", 1)[1])) as provider,
    ):
        await provider.synced.wait()
        if mode == "wait":
            done = asyncio.get_running_loop().create_future()

            def observe(event: Any) -> None:
                if not done.done() and len(text) == len(final) and str(text) == final:
                    done.set_result(time.monotonic())

            sub = text.observe(observe)
            print("ready", flush=True)
            t = await done
            text.unobserve(sub)
            print(json.dumps({"t_done": t}), flush=True)
        else:
            t0 = time.monotonic()
            txns = trace["txns"]
            for start in range(0, len(txns), 256):
                apply_trace(text, doc, txns[start : start + 256])
                await asyncio.sleep(0)
            print(
                json.dumps(
                    {
                        "t_start": t0,
                        "t_typed": time.monotonic(),
                        "sha": hashlib.sha256(str(text).encode()).hexdigest(),
                    }
                ),
                flush=True,
            )
            await asyncio.sleep(3600)


def _two_clients(c: Cluster, url: str, timeout: float) -> dict[str, Any]:
    """One client types the trace into `url`, the other times until it holds the final text."""
    waiter = c.proc([PY, "-m", "benchmarks.ybaseline", "wait", "--url", url], "ywait")
    waiter.readline(60)
    typer = c.proc([PY, "-m", "benchmarks.ybaseline", "type", "--url", url], "ytype")
    try:
        typed = json.loads(typer.readline(timeout))
        done = json.loads(waiter.readline(timeout))
    except RuntimeError:
        return {"lower_bound_s": timeout, "error": f"did not finish within {timeout:.0f} s"}
    return {
        "seconds": done["t_done"] - typed["t_start"],
        "typing_s": typed["t_typed"] - typed["t_start"],
    }


def pycrdt_websocket(trace: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Seconds from the first keystroke at one client to the final text at the other."""
    try:
        import pycrdt.websocket  # noqa: F401
    except ImportError as exc:
        return {"error": f"pycrdt-websocket is not installed ({exc})"}
    with Cluster() as c:
        server = c.proc([PY, "-m", "benchmarks.ybaseline", "server"], "yserver")
        url = server.readline(30).rsplit(" ", 1)[1] + "/paper"
        return _two_clients(c, url, timeout)


def y_websocket(timeout: float = 300) -> dict[str, Any]:
    """The same two clients on the y-websocket reference server (node)."""
    with reference_server() as server, Cluster() as c:
        if server.url is None:
            return {"error": server.error}
        return _two_clients(c, f"{server.url}/paper", timeout)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ybaseline")
    parser.add_argument("mode", choices=["server", "wait", "type"])
    parser.add_argument("--url", default="")
    args = parser.parse_args()
    asyncio.run(_server() if args.mode == "server" else _client(args.url, args.mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
