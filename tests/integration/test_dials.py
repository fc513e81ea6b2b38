"""Dials you can see and stop: real nodes on 127.0.0.1, in-process and through the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chat.daemon import Daemon
from mesh.runtime.home import Home
from mesh.runtime.node import NodeConfig
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity
from tests.integration.harness import FAST_LINK, Mesh
from tests.integration.test_cli_line import BASE, meshnotes
from tests.waiting import deadline, wait_until

RUN = ["run", "--headless", "--no-auto-connect", "--no-lan", "--listen", "127.0.0.1:0"]
OTHER_KEY = bytes(range(32))  # a private mesh's network key


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dial_of(daemon: Daemon, address: str) -> dict[str, Any]:
    return next(d for d in daemon.node.status()["dials"] if d["address"] == address)


async def private_node(root: Path, name: str) -> Daemon:
    """A node of another mesh (another network key)."""
    home = Home(root / name)
    config = NodeConfig(network_key=OTHER_KEY, auto_connect=False, link=FAST_LINK)
    daemon = Daemon(home, home.create_identity(name), config)
    await daemon.start()
    return daemon


async def test_each_failure_shows_in_the_dials_in_words(mesh: Mesh, tmp_path: Path) -> None:
    alice = await mesh.start("alice")
    bob = await mesh.start("bob")
    stranger = Identity.generate().peer_id
    refused = f"ws://127.0.0.1:{dead_port()}#{mesh.ids['bob']}"
    wrong_peer = mesh.addresses["bob"].split("#")[0] + "#" + stranger
    private = await private_node(tmp_path, "private")
    try:
        assert private.node.address is not None
        other_mesh = private.node.address
        outcomes = {}
        for address in (refused, wrong_peer, other_mesh):
            dial = alice.node.connect(PeerAddress.parse(address))
            assert dial is not None
            outcomes[address] = await alice.node.dial_outcome(dial, timeout=10)
    finally:
        await private.stop()
    assert outcomes[refused]["reason"] == "refused"
    assert outcomes[refused]["last_error"] == "refused: nothing listens at that address"
    assert outcomes[wrong_peer]["reason"] == "wrong peer key"
    assert outcomes[other_mesh]["reason"] == "wrong network key"
    assert outcomes[other_mesh]["last_error"].endswith("wrong network key?")
    for address, outcome in outcomes.items():
        listed = dial_of(alice, address)
        assert listed["reason"] == outcome["reason"]
        assert listed["attempts"] >= 1 and listed["state"] in ("waiting", "connecting")
    assert not bob.node.status()["links"]  # the wrong pinned key never linked


async def test_disconnect_holds_the_redial_and_forget_stops_it(mesh: Mesh) -> None:
    alice = await mesh.start("alice")
    bob = await mesh.start("bob")
    address = mesh.addresses["bob"]
    dial = alice.node.connect(PeerAddress.parse(address))
    assert dial is not None
    assert (await alice.node.dial_outcome(dial, timeout=10))["state"] == "linked"

    assert alice.node.disconnect(bob.node.identity.public_key) == 1
    await wait_until(lambda: not bob.node.status()["links"], what="the link to close")
    held = dial_of(alice, address)
    assert held["state"] == "held" and held["next_try_in"] > 500
    # what would redial at once (a few backoffs of 0.05 s) does not while held
    assert not alice.node.status()["links"]

    again = alice.node.connect(PeerAddress.parse(address))  # an explicit connect ends the hold
    assert again is dial
    assert (await alice.node.dial_outcome(dial, timeout=10))["state"] == "linked"

    forgotten = alice.node.forget(address.split("#")[0])  # the address without its #PEERID
    assert str(forgotten.address) == address
    assert alice.node.status()["dials"] == []
    assert alice.node.status()["links"]  # forgetting stops the dialing, not the link


class Nodes:
    """bob (default mesh) and carol (a private mesh key), then alice dialing three bad addresses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[str]] = []
        key_file = root / "mesh.key"
        key_file.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
        self.bob = self.start("bob")
        self.carol = self.start("carol", "--mesh-key-file", str(key_file))
        # one dial per peer key: each failing address pins a key of its own
        self.refused = f"ws://127.0.0.1:{dead_port()}#{Identity.generate().peer_id}"
        self.wrong_peer = self.bob.split("#")[0] + "#" + Identity.generate().peer_id
        self.failures = {
            self.refused: "refused: nothing listens at that address",
            self.wrong_peer: "wrong peer key: the node there refused our proof",
            self.carol: "no answer to the handshake before hanging up: wrong network key?",
        }
        self.start("alice", "--peer", *self.failures)

    def start(self, name: str, *extra: str) -> str:
        log = (self.root / f"{name}.log").open("a")
        proc = subprocess.Popen(
            [*BASE, "--home", str(self.root / name), *RUN, *extra],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "meshnotes node ID listening on ADDRESS"
        assert "listening on" in line, proc.communicate()
        return line.split()[-1]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=20)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    nodes = Nodes(tmp_path)
    yield nodes
    nodes.stop()


def test_the_command_line_shows_and_stops_dials(nodes: Nodes) -> None:
    home = ["--home", str(nodes.root / "alice")]
    end = deadline(20)
    while True:  # each --peer dial has failed once
        status = json.loads(meshnotes(*home, "status", "--json").stdout)
        dials = {d["address"]: d for d in status["dials"]}
        if all(dials[a]["last_error"] for a in nodes.failures):
            break
        assert time.monotonic() < end, f"not every dial failed within 20 s: {dials}"
        time.sleep(0.1)
    for address, words in nodes.failures.items():
        assert dials[address]["last_error"].startswith(words)
        assert dials[address]["source"] == "peer" and dials[address]["attempts"] >= 1
    plain = meshnotes(*home, "status").stdout
    assert "dials  3" in plain and "last: refused" in plain

    result = meshnotes(*home, "connect", "--wait", "10", nodes.refused)
    assert result.returncode == 1
    assert result.stderr == (
        f"meshnotes: {nodes.refused}: refused: nothing listens at that address"
        f" (still dialing; meshnotes forget {nodes.refused} stops it)\n"
    )
    result = meshnotes(*home, "connect", nodes.bob)
    assert result.returncode == 0 and result.stdout.startswith("linked to "), result
    bob_id = nodes.bob.split("#")[1]
    result = meshnotes(*home, "disconnect", bob_id[:10])
    assert result.returncode == 0, result
    assert result.stdout == (
        f"closed 1 link with {bob_id}; not redialing it for 10 min (or until meshnotes connect)\n"
    )

    result = meshnotes(*home, "forget", nodes.refused)
    assert result.returncode == 0 and result.stdout == f"stopped dialing {nodes.refused}\n"
    for verb in ("forget", "disconnect"):  # nothing left to stop: one line each
        result = meshnotes(*home, verb, nodes.refused)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result
