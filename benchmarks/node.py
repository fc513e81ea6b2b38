"""A benchmark node: what `meshnotes run --headless --no-auto-connect` runs, plus `bench.*` verbs.

    python -m benchmarks.node --home DIR [--listen 127.0.0.1:0] [--peer ADDRESS ...] [--bridge]

With --bridge the node serves the Yjs bridge on a free loopback port and says
``bridge URL TOKEN`` on the line after its address.

The node is the product's own: `tui.session.LocalSession` (a `chat.daemon.Daemon` with
`crdt.service.NotesService`). The extra control verbs only drive it from inside
its process (type an editing trace, time when a text appears), so that timing
is taken where the work happens and not across a control-socket round trip.

With BENCH_PROFILE=PATH in its environment, a node writes a cProfile of its
trace typing to PATH, of its catch-up after joining to PATH.join and of its
catch-up when it comes back after being offline to PATH.back.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from chat.history import SHOWN
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress
from tui.session import LocalSession

_trace: dict[str, Any] | None = None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class BenchVerbs:
    def __init__(self, session: LocalSession) -> None:
        self.s = session
        d = session.daemon.control
        self._profiler: cProfile.Profile | None = None
        for name in (
            "wait_member",
            "wait_invited",
            "type_trace",
            "wait_text",
            "join_and_wait",
            "keystrokes",
            "watch",
            "rss",
            "note_digest",
            "dm_round_trips",
            "say_many",
            "come_back",
            "cpu",
            "profile",
        ):
            d.register(f"bench.{name}", getattr(self, name))

    async def _until(self, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError("bench: condition not reached")
            await asyncio.sleep(0.01)

    def _member(self, room: str) -> bool:
        rooms = self.s.chat.rooms
        state = rooms.state(room)
        me = self.s.node.identity.public_key
        return me in state.members and rooms.document_key(room, state.epoch) is not None

    async def wait_member(self, args: dict[str, Any]) -> dict[str, Any]:
        room = str(args["room"])
        await self._until(
            lambda: self.s.chat.rooms.conversation(room) is not None and self._member(room),
            float(args.get("timeout", 30)),
        )
        return {"ok": True}

    async def wait_invited(self, args: dict[str, Any]) -> dict[str, Any]:
        room = str(args["room"])
        me = self.s.node.identity.public_key

        def invited() -> bool:
            if self.s.chat.rooms.conversation(room) is None:
                return False
            return me in self.s.chat.rooms.state(room).invited

        await self._until(invited, float(args.get("timeout", 30)))
        return {"ok": True}

    async def type_trace(self, args: dict[str, Any]) -> dict[str, Any]:
        """Type the first `edits` transactions of the trace into a note, yielding now and then."""
        global _trace
        if _trace is None:
            from benchmarks.common import load_trace

            _trace = load_trace()
        txns = _trace["txns"][: int(args.get("edits", len(_trace["txns"])))]
        every = int(args.get("yield_every", 256))
        notes = self.s.notes_layer
        note_id = str(args["note"])
        note = notes.get(note_id)
        profile = os.environ.get("BENCH_PROFILE")  # a path: cProfile the typing loop there
        profiler = cProfile.Profile() if profile else None
        t0, cpu0 = time.monotonic(), time.process_time()
        if profiler:
            profiler.enable()
        for i, txn in enumerate(txns):
            note.apply_patches(txn["patches"])
            if i % every == every - 1:
                await asyncio.sleep(0)
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        t1, cpu1 = time.monotonic(), time.process_time()
        notes.flush(note_id)
        text = note.text
        return {
            "t_start": t0,
            "t_typed": t1,
            "cpu_s": cpu1 - cpu0,  # this process's CPU time while typing (all its threads)
            "t_flushed": time.monotonic(),
            "length": len(text),
            "sha": _digest(text),
        }

    async def _wait_text(self, note_id: str, length: int, sha: str, timeout: float) -> float:
        notes = self.s.notes_layer
        done = asyncio.get_running_loop().create_future()

        def check() -> None:
            if done.done():
                return
            try:
                text = notes.get(note_id).text
            except Exception:
                return
            if len(text) == length and _digest(text) == sha:
                done.set_result(time.monotonic())

        def listener(kind: str, data: dict[str, Any]) -> None:
            if kind == "note" and data.get("note_id") == note_id:
                check()

        notes.listeners.append(listener)
        try:
            check()
            return await asyncio.wait_for(done, timeout)
        finally:
            notes.listeners.remove(listener)

    async def wait_text(self, args: dict[str, Any]) -> dict[str, Any]:
        t = await self._wait_text(
            str(args["note"]),
            int(args["length"]),
            str(args["sha"]),
            float(args.get("timeout", 300)),
        )
        return {"t_done": t}

    async def join_and_wait(self, args: dict[str, Any]) -> dict[str, Any]:
        """Accept the invitation to `room`, then time until `note` holds the expected text."""
        room = str(args["room"])
        keys: list[float] = []

        def on_chat(kind: str, data: dict[str, Any]) -> None:
            if kind == "dockeys" and not keys:
                keys.append(time.monotonic())

        self.s.chat.listeners.append(on_chat)
        waiter = asyncio.ensure_future(
            self._wait_text(
                str(args["note"]),
                int(args["length"]),
                str(args["sha"]),
                float(args.get("timeout", 300)),
            )
        )
        await asyncio.sleep(0)
        profile = os.environ.get("BENCH_PROFILE")  # a path: cProfile the catch-up at PATH.join
        profiler = cProfile.Profile() if profile else None
        t0 = time.monotonic()
        if profiler:
            profiler.enable()
        self.s.chat.rooms.join(room)
        try:
            t_done = await waiter
        finally:
            self.s.chat.listeners.remove(on_chat)
            if profiler:
                profiler.disable()
                profiler.dump_stats(f"{profile}.join")
        return {"t_join": t0, "t_keys": keys[0] if keys else None, "t_done": t_done}

    async def keystrokes(self, args: dict[str, Any]) -> dict[str, Any]:
        """Append one character every `interval` seconds; return when each was typed."""
        note = self.s.notes_layer.get(str(args["note"]))
        interval = float(args.get("interval", 0.1))
        times = []
        start = time.monotonic()
        for i in range(int(args["count"])):
            await asyncio.sleep(max(0.0, start + i * interval - time.monotonic()))
            times.append(time.monotonic())
            note.append("x")
        return {"times": times}

    async def watch(self, args: dict[str, Any]) -> dict[str, Any]:
        """Record when the note first holds base+1, base+2, ... base+count characters."""
        notes = self.s.notes_layer
        note_id = str(args["note"])
        base, count = int(args["base"]), int(args["count"])
        times: list[float] = []
        done = asyncio.get_running_loop().create_future()

        def listener(kind: str, data: dict[str, Any]) -> None:
            if kind != "note" or data.get("note_id") != note_id:
                return
            now = time.monotonic()
            n = len(notes.get(note_id).text) - base
            while len(times) < min(n, count):
                times.append(now)
            if len(times) >= count and not done.done():
                done.set_result(None)

        notes.listeners.append(listener)
        try:
            await asyncio.wait_for(done, float(args.get("timeout", 120)))
        finally:
            notes.listeners.remove(listener)
        return {"times": times}

    async def note_digest(self, args: dict[str, Any]) -> dict[str, Any]:
        """The length and SHA-256 of a note's text (none yet: length -1)."""
        try:
            text = self.s.notes_layer.get(str(args["note"])).text
        except Exception:
            return {"length": -1, "sha": ""}
        return {"length": len(text), "sha": _digest(text)}

    async def dm_round_trips(self, args: dict[str, Any]) -> dict[str, Any]:
        """Send `count` direct messages to `peer` one after another; return, for each, the
        milliseconds from sending to its receipt (the message shown delivered)."""
        chat = self.s.chat
        delivered: dict[str, float] = {}

        def listener(kind: str, data: dict[str, Any]) -> None:
            if kind == "status" and data.get("status") == "delivered":
                delivered.setdefault(str(data["id"]), time.monotonic())

        chat.listeners.append(listener)
        rtts = []
        try:
            for i in range(int(args["count"])):
                start = time.monotonic()
                msg_id = chat.send_direct(str(args["peer"]), f"round trip {i}")
                await self._until(lambda m=msg_id: m in delivered, float(args.get("timeout", 30)))
                rtts.append((delivered[msg_id] - start) * 1000)
        finally:
            chat.listeners.remove(listener)
        return {"rtt_ms": rtts}

    async def say_many(self, args: dict[str, Any]) -> dict[str, Any]:
        """Send `count` messages to a room, yielding to the event loop every 100."""
        room, count = str(args["room"]), int(args["count"])
        for i in range(count):
            self.s.chat.say(room, f"message {i} while you were away")
            if i % 100 == 99:
                await asyncio.sleep(0)
        return {"sent": count}

    def _shown(self, room: str) -> int:
        rows = self.s.chat.store.query(
            f"SELECT count(*) AS n FROM messages WHERE conv_id = ? AND {SHOWN}", (room,)
        )
        return int(rows[0]["n"])

    async def come_back(self, args: dict[str, Any]) -> dict[str, Any]:
        """Dial `peer` (this node's first link), then time until the room shows `messages`
        messages and the note holds the expected text (times relative to the link's opening)."""
        room, want = str(args["room"]), int(args["messages"])
        node = self.s.node
        timeout = float(args.get("timeout", 120))
        before = self._shown(room)
        # counted as a front end learns of them (the chat's "message" events, sent once a
        # burst commits): counting the stored rows every 10 ms cost the member about a
        # third of its event loop at 20,000 messages; the stored count is checked at the end
        seen: set[str] = set()
        curve: list[tuple[float, int]] = []  # (seconds since the link, messages shown)

        def on_chat(kind: str, data: dict[str, Any]) -> None:
            if kind == "message" and data["conv_id"] == room:
                seen.add(data["id"])

        def all_shown() -> bool:
            if not curve or len(seen) != curve[-1][1]:
                curve.append((round(time.monotonic() - t_link, 3), len(seen)))
            return before + len(seen) >= want and self._shown(room) >= want

        self.s.chat.listeners.append(on_chat)

        profile = os.environ.get("BENCH_PROFILE")  # a path: cProfile the catch-up at PATH.back
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        t_dial = time.monotonic()
        node.connect(PeerAddress.parse(str(args["peer"])))
        await self._until(lambda: any(c.opened for c in node.conns.values()), timeout)
        t_link = time.monotonic()
        cpu = time.process_time()
        note = asyncio.ensure_future(
            self._wait_text(str(args["note"]), int(args["length"]), str(args["sha"]), timeout)
        )
        try:
            await self._until(all_shown, timeout)
            t_messages: float | None = time.monotonic()
        except TimeoutError:  # say how far it got
            t_messages = None
        finally:
            self.s.chat.listeners.remove(on_chat)
        try:
            t_note: float | None = await note
        except TimeoutError:
            t_note = None
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{profile}.back")
        return {
            "before": before,
            "shown": self._shown(room),
            "dial_s": t_link - t_dial,
            "messages_s": None if t_messages is None else t_messages - t_link,
            "note_s": None if t_note is None else t_note - t_link,
            "timeout_s": timeout,
            "cpu_s": time.process_time() - cpu,
            "curve": curve,
            # why messages were not taken in (chat.inbox counts each refusal by its reason)
            "refused": {
                k: v
                for k, v in self.s.chat.counters.items()
                if k.startswith(("chat_rejected", "chat_share_unopened", "chat_pending"))
            },
        }

    async def cpu(self, args: dict[str, Any]) -> dict[str, Any]:
        """This process's CPU time so far (user and system, every thread)."""
        return {"cpu_s": time.process_time()}

    async def profile(self, args: dict[str, Any]) -> dict[str, Any]:
        """Start a cProfile of this node (`path` absent), or stop it and write it to `path`."""
        if "path" not in args:
            self._profiler = cProfile.Profile()
            self._profiler.enable()
        elif self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(str(args["path"]))
            self._profiler = None
        return {"ok": True}

    async def rss(self, args: dict[str, Any]) -> dict[str, Any]:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return {"rss_mb": int(line.split()[1]) / 1024}
        return {"rss_mb": None}


async def _main(args: argparse.Namespace) -> int:
    host, port = args.listen.rsplit(":", 1)
    config = NodeConfig(
        listen=(host, int(port)),
        peers=[PeerAddress.parse(p) for p in args.peer],
        auto_connect=False,
    )
    bridge = ("127.0.0.1", 0) if args.bridge else None
    session = LocalSession.for_home(Home.resolve(args.home), config, bridge=bridge, name=args.name)
    BenchVerbs(session)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await session.start()
    try:
        node = session.daemon.node
        print(f"meshnotes node {node.identity.peer_id} listening on {node.address}", flush=True)
        if session.service.bridge is not None:
            print(f"bridge {session.service.bridge.url} {session.service.bridge.token}", flush=True)
        await stop.wait()
    finally:
        await session.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node")
    parser.add_argument("--home", required=True)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--peer", action="append", default=[])
    parser.add_argument("--name", default="bench")
    parser.add_argument("--bridge", action="store_true", help="serve the Yjs bridge too")
    return asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
