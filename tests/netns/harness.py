"""Small networks of Linux network namespaces with real ``meshnotes`` processes in them.

Two LANs and a router between them::

    LAN A 10.19.1.0/24          router namespace            LAN B 10.19.2.0/24
    a1 (eth0 10.19.1.2) --+                                 +-- b1 (eth0 10.19.2.2)
    a2 (eth0 10.19.1.3) --+-- bridge bra 10.19.1.1  bridge brb 10.19.2.1 --+
                                   (IP forwarding on or off)

Each host is a namespace joined to its LAN's bridge (in the router namespace) by a veth pair,
with a default route through the router. Multicast (mDNS) stays inside a LAN. Nodes run as
``ip netns exec NS .venv/bin/meshnotes --home HOME run --headless`` with their home in a temp
directory; the tests drive them through the control socket, which is a Unix socket and so
reachable from any namespace. Links between the LANs are shaped by benchmarks/shaper.py, run
in the router namespace (this kernel has no ``tc netem``). :meth:`Net.close` kills every
process and deletes every namespace (which removes their links and bridges), even after a
failure. :func:`unavailable` says why namespaces cannot be used here, if they cannot.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.netmesh import MESHNOTES
from benchmarks.netmesh import ip as _ip
from benchmarks.netmesh import unavailable as unavailable  # the tests ask it here
from mesh.runtime.home import Home
from tui.verbs import client

ROOT = Path(__file__).resolve().parents[2]
SUBNET = {"A": "10.19.1", "B": "10.19.2"}
_ids = itertools.count(1)


@dataclass
class Host:
    """One namespace on a LAN."""

    ns: str
    lan: str
    ip: str


@dataclass
class NodeProc:
    """A meshnotes node running in a host."""

    host: Host
    home: Path
    proc: subprocess.Popen[bytes]
    peer_id: str = ""

    def client(self):  # type: ignore[no-untyped-def]
        return client(Home(self.home))

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``meshnotes --home HOME ARGS`` (from the root namespace: the control socket is a
        Unix socket)."""
        return subprocess.run(
            [str(MESHNOTES), "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class Net:
    """Two LANs and a router; hosts, nodes and shapers added on demand."""

    root: Path
    forward: bool = True
    tag: str = field(default_factory=lambda: f"mn{os.getpid() % 100000}x{next(_ids)}")
    namespaces: list[str] = field(default_factory=list)
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def router(self) -> str:
        return f"{self.tag}r"

    def build(self) -> Net:
        self._netns(self.router)
        r = self.router
        _ip("-n", r, "link", "set", "lo", "up")
        for lan, subnet in SUBNET.items():
            bridge = f"br{lan.lower()}"
            _ip("-n", r, "link", "add", bridge, "type", "bridge")
            _ip("-n", r, "addr", "add", f"{subnet}.1/24", "dev", bridge)
            _ip("-n", r, "link", "set", bridge, "up")
        value = "1" if self.forward else "0"
        subprocess.run(
            ["ip", "netns", "exec", r, "sysctl", "-qw", f"net.ipv4.ip_forward={value}"],
            check=True,
        )
        return self

    def _netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.namespaces.append(name)

    def add_host(self, name: str, lan: str) -> Host:
        ns = f"{self.tag}{name}"
        index = sum(1 for h in self.hosts.values() if h.lan == lan) + 2
        ip = f"{SUBNET[lan]}.{index}"
        self._netns(ns)
        port = f"v{name}"
        _ip(
            "-n",
            ns,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            self.router,
        )
        _ip("-n", self.router, "link", "set", port, "master", f"br{lan.lower()}")
        _ip("-n", self.router, "link", "set", port, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{SUBNET[lan]}.1")
        host = self.hosts[name] = Host(ns, lan, ip)
        return host

    def start_node(self, name: str, lan: str, *args: str) -> NodeProc:
        """Start ``meshnotes run --headless ARGS`` in a new host `name` on `lan`."""
        host = self.add_host(name, lan)
        home = self.root / name
        log = (self.root / f"{name}.log").open("ab")
        command = [str(MESHNOTES), "--home", str(home), "run", "--headless", "--name", name]
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, *command, *args],
            stdout=log,
            stderr=log,
            cwd=self.root,
        )
        log.close()
        self.procs.append(proc)
        return NodeProc(host, home, proc)

    def start_shaper(self, listen: str, to: str, *, delay: float, cut_mean: float) -> None:
        """Run benchmarks/shaper.py in the router namespace; returns once it listens."""
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.router,
                sys.executable,
                "-m",
                "benchmarks.shaper",
                "--listen",
                listen,
                "--to",
                to,
                "--delay",
                str(delay),
                "--jitter",
                str(delay / 5),
                "--cut-mean",
                str(cut_mean),
                "--seed",
                "19",
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        assert b"shaper ready" in proc.stdout.readline()

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and delete every namespace."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.root.glob("*.log"))
