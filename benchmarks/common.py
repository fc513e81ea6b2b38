"""Shared helpers: node processes, control calls, the editing trace, result rows."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.runtime.control import call

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "tests" / "data" / "editing-traces"  # see its README.md for the attribution
TRACE = TRACES / "automerge-paper.json.gz"
PY = sys.executable


def load_trace(path: Path = TRACE) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Row:
    """One line of the table."""

    figure: str
    ours: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Proc:
    """A child process we started; stopped by its own pid only."""

    def __init__(self, args: list[str], name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.p = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            start_new_session=True,
        )
        self._err: list[str] = []
        threading.Thread(target=self._drain_err, daemon=True).start()

    def _drain_err(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self._err.append(line)
            del self._err[:-50]

    @property
    def pid(self) -> int:
        return self.p.pid

    def readline(self, timeout: float = 30.0) -> str:
        assert self.p.stdout is not None
        result: list[str] = []
        t = threading.Thread(target=lambda: result.append(self.p.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        if not result or not result[0]:
            raise RuntimeError(f"{self.name}: no output in {timeout}s; stderr: {self.stderr()}")
        return result[0].rstrip("\n")

    def stderr(self) -> str:
        return "".join(self._err[-20:])

    def stop(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(5)


class BenchNode:
    """A meshnotes node (Daemon + NotesService, as `meshnotes run --headless`), own process."""

    def __init__(self, root: Path, name: str, peers: list[str] = (), extra: list[str] = ()) -> None:
        self.name = name
        self.home = root / name
        args = [PY, "-m", "benchmarks.node", "--home", str(self.home), "--name", name, *extra]
        for peer in peers:
            args += ["--peer", peer]
        self.proc = Proc(args, name)
        line = self.proc.readline(60)
        if "listening on" not in line:
            raise RuntimeError(f"{name}: unexpected first line {line!r}")
        self.address = line.rsplit(" ", 1)[1]
        self.peer_id = self.address.rsplit("#", 1)[1]

    def call(self, cmd: str, args: dict[str, Any] | None = None, timeout: float = 300.0) -> Any:
        return call(self.home / "control.sock", cmd, args, timeout=timeout)

    def wait_route(self, peer_id: str, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for route in self.call("status")["routes"]:
                if route["dest"] == peer_id:
                    return int(route["hops"])
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no route to {peer_id[:8]} after {timeout}s")

    def wait_note(self, note: str, timeout: float = 60.0) -> None:
        """Until this node holds the note (any text)."""
        deadline = time.monotonic() + timeout
        while self.call("bench.note_digest", {"note": note})["length"] < 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} never got the note")
            time.sleep(0.05)

    def wait_room_log_quiet(self, timeout: float = 60.0) -> None:
        """Until this node's room log has not grown for a second: it holds the whole history
        and the author's snapshot (published once a note is quiet for half a second)."""
        last, stable = -1, 0
        deadline = time.monotonic() + timeout
        while stable < 10 and time.monotonic() < deadline:
            size = self.call("status")["caches"]["room_log"]["size"]
            stable = stable + 1 if size == last else 0
            last = size
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.stop()


class Cluster:
    """Nodes and helper processes of one benchmark, in a temporary directory."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="mnb", dir="/tmp")
        self.root = Path(self.tmp.name)
        self.nodes: list[BenchNode] = []
        self.procs: list[Proc] = []

    def node(self, name: str, peers: list[str] = (), extra: list[str] = ()) -> BenchNode:
        n = BenchNode(self.root, name, list(peers), list(extra))
        self.nodes.append(n)
        return n

    def proc(self, args: list[str], name: str) -> Proc:
        p = Proc(args, name)
        self.procs.append(p)
        return p

    def line(self, count: int) -> list[BenchNode]:
        """Nodes n0 - n1 - ... each dialing the previous one."""
        nodes: list[BenchNode] = []
        for i in range(count):
            nodes.append(self.node(f"n{i}", [nodes[-1].address] if nodes else []))
        return nodes

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # say what the nodes said before they go
            for n in self.nodes:
                if n.proc.stderr().strip():
                    print(f"--- stderr of {n.name} ---\n{n.proc.stderr()}", file=sys.stderr)
        for p in self.procs:
            p.stop()
        for n in self.nodes:
            n.stop()
        self.tmp.cleanup()


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run fn in a thread; return a joiner that gives its result (or raises its error)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout: float | None = None) -> Any:
        t.join(timeout)
        if "error" in box:
            raise box["error"]
        if t.is_alive():
            raise TimeoutError(f"{fn} did not finish")
        return box["result"]

    return join


def setup_room(admin: BenchNode, members: list[BenchNode], name: str = "bench") -> str:
    """A room made by `admin` with `members` joined (contacts both ways); return its id."""
    for m in members:
        admin.call("contacts.add", {"peer": m.peer_id, "name": m.name})
        m.call("contacts.add", {"peer": admin.peer_id, "name": admin.name})
    room = admin.call("room.new", {"name": name})["room_id"]
    for m in members:
        admin.call("room.invite", {"room": room, "peer": m.peer_id})
    for m in members:
        m.call("bench.wait_member", {"room": room}, timeout=60)
    return room
