"""A mesh of real ``meshnotes run --headless`` processes on a given graph, its links shaped.

Each node runs in its own Linux network namespace, joined by a veth pair to one bridge in a
hub namespace (``10.21.0.1``; node ``i`` is ``10.21.0.(i + 2)``). Where namespaces are not
permitted (not root, no iproute2) every node listens on 127.0.0.1 instead, each on its own
port. Either way the nodes never dial each other directly: one shaper process
(benchmarks/shaper.py) holds a listening port per graph edge ``(u, v)`` and proxies it to
``v``, adding that link's delay and cutting connections at random; ``u`` is started with
``--peer`` at that port, and every node with ``--no-lan --no-auto-connect``, so the links
that exist are the graph's. This kernel has no ``tc netem``, hence the userspace shaper.

A node killed (SIGKILL) restarts with the same home and arguments: the same identity, the
same database, the same peers to dial.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.errors import MeshError
from mesh.runtime.home import Home
from tui.verbs import client

ROOT = Path(__file__).resolve().parent.parent
MESHNOTES = Path(sys.executable).parent / "meshnotes"
HUB = "10.21.0"
SHAPER_PORT = 20000  # edge e listens on SHAPER_PORT + e
LOOPBACK_PORT = 17000  # without namespaces, node i listens on LOOPBACK_PORT + i
NODE_PORT = 7707


def ip(*args: str) -> None:
    """Run ``ip ARGS``; RuntimeError with its message when it fails."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def unavailable() -> str | None:
    """Why network namespaces cannot be used here (None: they can)."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"mnprobe{os.getpid()}"
    try:
        ip("netns", "add", probe)
        ip("-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1")
        ip("-n", probe, "link", "add", "br0", "type", "bridge")
    except RuntimeError as exc:
        return f"ip netns is not permitted here: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    if not MESHNOTES.exists():
        return f"{MESHNOTES} is not installed"
    return None


def _environment() -> dict[str, str]:
    """This checkout first on the path of every process started here."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def meshnotes(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tui.cli", "--home", str(home), *args]


@dataclass
class Node:
    """One meshnotes process: where it runs, how it is started, whether it runs."""

    index: int
    home: Path
    prefix: list[str]  # ``ip netns exec NS`` or nothing
    host: str  # the address its listener is reached at
    port: int
    peer_id: str = ""
    peers: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"n{self.index}"

    def ask(self, verb: str, *args: Any) -> Any:
        """One control call; None while the node cannot answer (down, starting)."""
        with contextlib.suppress(MeshError, OSError):
            return getattr(client(Home(self.home)), verb)(*args)
        return None

    def start(self) -> None:
        listen = f"{'0.0.0.0' if self.prefix else self.host}:{self.port}"
        command = meshnotes(self.home, "run", "--headless", "--listen", listen)
        command += ["--no-lan", "--no-auto-connect"]
        if self.peers:
            command += ["--peer", *self.peers]
        with (self.home.parent / f"{self.name}.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, *command], stdout=log, stderr=log, cwd=ROOT, env=_environment()
            )

    def kill(self) -> None:
        """SIGKILL: no goodbye, nothing flushed beyond what the node committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class NetMesh:
    """Nodes on graph `edges`, edge ``e`` delayed `delays[e]` seconds each way."""

    root: Path
    n: int
    edges: list[tuple[int, int]]
    delays: list[float]
    cut_mean: float
    seed: int
    netns: bool = True
    tag: str = field(default_factory=lambda: f"rm{os.getpid() % 100000}")
    nodes: list[Node] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    shaper: subprocess.Popen[bytes] | None = None

    @property
    def hub(self) -> str:
        return f"{self.tag}h"

    def build(self) -> NetMesh:
        """Namespaces, identities, the shaper; the nodes are not started yet."""
        if self.netns:
            self._namespace(self.hub)
            ip("-n", self.hub, "link", "set", "lo", "up")
            ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            ip("-n", self.hub, "addr", "add", f"{HUB}.1/24", "dev", "br0")
            ip("-n", self.hub, "link", "set", "br0", "up")
        for i in range(self.n):
            self.nodes.append(self._node(i))
        for e, (u, v) in enumerate(self.edges):
            self.nodes[u].peers.append(
                f"ws://{self._shaper_host}:{SHAPER_PORT + e}#" + (self.nodes[v].peer_id)
            )
        self._start_shaper()
        return self

    @property
    def _shaper_host(self) -> str:
        return f"{HUB}.1" if self.netns else "127.0.0.1"

    def _namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.namespaces.append(name)

    def _node(self, i: int) -> Node:
        home = self.root / f"n{i}"
        if self.netns:
            ns, host = f"{self.tag}n{i}", f"{HUB}.{i + 2}"
            self._namespace(ns)
            ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"v{i}",
               "netns", self.hub)  # fmt: skip
            ip("-n", self.hub, "link", "set", f"v{i}", "master", "br0")
            ip("-n", self.hub, "link", "set", f"v{i}", "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{host}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            node = Node(i, home, ["ip", "netns", "exec", ns], host, NODE_PORT)
        else:
            node = Node(i, home, [], "127.0.0.1", LOOPBACK_PORT + i)
        made = subprocess.run(
            meshnotes(home, "init", "--name", node.name),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=_environment(),
        )
        node.peer_id = made.stdout.split()[0]
        return node

    def _start_shaper(self) -> None:
        command = [sys.executable, "-m", "benchmarks.shaper", "--cut-mean", str(self.cut_mean)]
        command += ["--seed", str(self.seed)]
        for e, (_, v) in enumerate(self.edges):
            far = self.nodes[v]
            listen = f"{self._shaper_host}:{SHAPER_PORT + e}"
            command += ["--link", listen, f"{far.host}:{far.port}", f"{self.delays[e]:.4f}"]
        prefix = ["ip", "netns", "exec", self.hub] if self.netns else []
        out = self.root / "shaper.out"
        with out.open("w") as f:
            self.shaper = subprocess.Popen(
                [*prefix, *command], stdout=f, cwd=ROOT, env=_environment()
            )
        end = time.monotonic() + 60
        while "shaper ready" not in out.read_text():
            if self.shaper.poll() is not None or time.monotonic() > end:
                raise RuntimeError("the link shaper did not start")
            time.sleep(0.05)

    def cuts(self) -> list[tuple[int, float]]:
        """The connections the shaper cut so far: (edge, unix time)."""
        found = []
        for line in (self.root / "shaper.out").read_text().splitlines():
            if line.startswith("cut "):
                _, listen, when = line.split()
                found.append((int(listen.rsplit(":", 1)[1]) - SHAPER_PORT, float(when)))
        return found

    def close(self) -> None:
        """Stop every node and the shaper, delete every namespace."""
        for node in self.nodes:
            if node.running:
                assert node.proc is not None
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.kill()
        if self.shaper is not None and self.shaper.poll() is None:
            self.shaper.terminate()
            self.shaper.wait(timeout=20)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)

    def logs(self, tail: int = 2000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
            for p in sorted(self.root.glob("*.log"))
        )
