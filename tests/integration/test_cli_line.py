"""The command line against real node processes: the three-node line of the mesh-core issue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import deadline

MESHNOTES = Path(sys.executable).with_name("meshnotes")
BASE = [str(MESHNOTES)] if MESHNOTES.exists() else [sys.executable, "-m", "tui.cli"]


def meshnotes(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


class Line:
    """Three headless node processes A <- B <- C, all --no-auto-connect."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.homes = {name: root / name for name in "ABC"}
        self.ids: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.addresses: dict[str, str] = {}
        for name, home in self.homes.items():
            result = meshnotes("--home", str(home), "init", "--name", name)
            assert result.returncode == 0, result.stderr
            self.ids[name] = result.stdout.strip()

    def start(self, names: str = "ABC") -> None:
        """Start nodes in order, each on a free port, each dialing the one before it."""
        upstream = {"B": "A", "C": "B"}
        for name in names:
            port = (
                self.addresses[name].split("#")[0].rsplit(":", 1)[1]
                if name in self.addresses
                else 0
            )
            args = [
                "--home",
                str(self.homes[name]),
                "run",
                "--headless",
                "--no-auto-connect",
                "--listen",
                f"127.0.0.1:{port}",
            ]
            if name in upstream:
                args += ["--peer", self.addresses[upstream[name]]]
            if name == "C":
                args += ["--rooms", "tree"]  # A and B keep the default (auto)
            # logs go to a file: a pipe nobody reads would fill up and stall the node
            log = (self.root / f"{name}.log").open("a")
            self.procs[name] = proc = subprocess.Popen(
                [*BASE, *args], stdout=subprocess.PIPE, stderr=log, text=True
            )
            log.close()
            assert proc.stdout is not None
            line = proc.stdout.readline()  # "meshnotes node ID listening on ADDRESS"
            assert "listening on" in line, proc.communicate()
            self.addresses.setdefault(name, line.split()[-1])
            # a restarted node listens where it did before: its neighbours redial that
            assert line.split()[-1] == self.addresses[name]

    def stop_one(self, name: str) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=20)

    def stop(self) -> dict[str, int]:
        codes = {}
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = -9
        return codes


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Line]:
    line = Line(tmp_path)
    line.start()
    yield line
    line.stop()


def test_status_shows_the_two_hop_route_and_ping_crosses_it(line: Line) -> None:
    home_a = str(line.homes["A"])
    end = deadline(10)
    while True:
        result = meshnotes("--home", home_a, "status", "--json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        routes = {r["dest"]: r for r in status["routes"]}
        if line.ids["C"] in routes:
            break
        assert time.monotonic() < end, f"no route to C within 10 s: {status}"
        time.sleep(0.1)
    assert routes[line.ids["C"]]["next_hop"] == line.ids["B"]
    assert routes[line.ids["C"]]["hops"] == 2
    assert status["peer_id"] == line.ids["A"]
    assert [link["peer_id"] for link in status["links"]] == [line.ids["B"]]
    assert status["links"][0]["direction"] == "inbound"
    assert status["caches"]["seen_ids"]["bound"] >= status["caches"]["seen_ids"]["size"]
    assert all(isinstance(v, int) for v in status["counters"].values())
    # three nodes: auto floods room traffic; C was started with --rooms tree
    assert (status["rooms"]["mode"], status["rooms"]["routing"]) == ("auto", "flood")
    result = meshnotes("--home", str(line.homes["C"]), "status", "--json")
    rooms = json.loads(result.stdout)["rooms"]
    assert (rooms["mode"], rooms["routing"]) == ("tree", "tree")
    result = meshnotes("--home", str(line.homes["C"]), "status")
    assert "rooms  tree (now: tree)" in result.stdout.splitlines()

    result = meshnotes("--home", home_a, "ping", line.ids["C"], "--count", "3", "--json")
    assert result.returncode == 0, result.stderr
    replies = json.loads(result.stdout)
    assert len(replies) == 3
    assert [r["hops"] for r in replies] == [2, 2, 2]
    assert all(r["rtt_ms"] > 0 for r in replies)

    result = meshnotes("--home", home_a, "ping", line.ids["C"][:6])  # a unique prefix
    assert result.returncode == 0 and "hops=2" in result.stdout

    result = meshnotes("--home", home_a, "id", "--json")
    info = json.loads(result.stdout)
    assert info["peer_id"] == line.ids["A"] and info["name"] == "A"


def test_sigterm_stops_nodes_cleanly(line: Line) -> None:
    codes = line.stop()
    assert codes == {"A": 0, "B": 0, "C": 0}
    for name in "ABC":
        assert not (line.homes[name] / "control.sock").exists()
        assert "Traceback" not in (line.root / f"{name}.log").read_text()


def test_init_refuses_to_overwrite_and_keys_are_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "h"
    first = meshnotes("--home", str(home), "init")
    second = meshnotes("--home", str(home), "init")
    assert first.returncode == 0 and second.returncode != 0
    assert "already holds an identity" in second.stderr
    assert meshnotes("--home", str(home), "id").stdout.split()[0] == first.stdout.strip()
    assert (home / "identity.json").stat().st_mode & 0o777 == 0o600
    assert home.stat().st_mode & 0o777 == 0o700


def test_passphrase_protected_identity_needs_the_passphrase(tmp_path: Path) -> None:
    home = str(tmp_path / "h")
    env = {**os.environ, "MESHNOTES_PASSPHRASE": "correct horse"}
    created = subprocess.run(
        [*BASE, "--home", home, "init"], env=env, capture_output=True, text=True
    )
    assert created.returncode == 0
    # the public id is readable without the passphrase; running the node is not
    assert meshnotes("--home", home, "id").stdout.split()[0] == created.stdout.strip()
    run = ["--home", home, "run", "--headless", "--listen", "127.0.0.1:0"]
    locked = meshnotes(*run)
    assert locked.returncode == 1 and "locked" in locked.stderr
    wrong = subprocess.run(
        [*BASE, *run],
        capture_output=True,
        text=True,
        env={**os.environ, "MESHNOTES_PASSPHRASE": "wrong"},
        timeout=60,
    )
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    assert not (tmp_path / "h" / "control.sock").exists()


def poll_json(args: list[str], accept: Callable[[Any], bool], timeout: float = 15) -> Any:
    """Run a verb until its JSON output satisfies `accept`; fail after `timeout` seconds."""
    end = deadline(timeout)
    while True:
        result = meshnotes(*args)
        assert result.returncode == 0, result.stderr
        value = json.loads(result.stdout)
        if accept(value):
            return value
        assert time.monotonic() < end, f"{args}: still {value}"
        time.sleep(0.1)


def test_dm_over_the_line_is_received_then_delivered(line: Line) -> None:
    home_a, home_c = str(line.homes["A"]), str(line.homes["C"])
    poll_json(
        ["--home", home_a, "status", "--json"],
        lambda s: line.ids["C"] in {r["dest"] for r in s["routes"]},
    )
    sent = meshnotes("--home", home_a, "dm", line.ids["C"], "hello")
    assert sent.returncode == 0, sent.stderr
    msg_id = sent.stdout.strip()

    at_c = poll_json(["--home", home_c, "history", line.ids["A"], "--json"], lambda h: h)
    assert [(m["id"], m["author"], m["text"], m["status"]) for m in at_c] == [
        (msg_id, line.ids["A"], "hello", "received")
    ]
    assert isinstance(at_c[0]["ts"], int)
    at_a = poll_json(
        ["--home", home_a, "history", line.ids["C"], "--json"],
        lambda h: h and h[0]["status"] == "delivered",
    )
    assert at_a[0]["id"] == msg_id


def test_dm_waits_in_the_mesh_for_a_peer_that_was_offline(tmp_path: Path) -> None:
    line = Line(tmp_path)
    try:
        line.start("AB")
        sent = meshnotes("--home", str(line.homes["A"]), "dm", line.ids["C"], "see you later")
        assert sent.returncode == 0, sent.stderr
        poll_json(
            ["--home", str(line.homes["B"]), "status", "--json"],
            lambda s: s["caches"]["mailbox"]["size"] >= 1,
        )
        assert line.stop_one("A") == 0
        line.start("C")  # C dials B only; A is gone
        history = poll_json(
            ["--home", str(line.homes["C"]), "history", line.ids["A"], "--json"], lambda h: h
        )
        assert [(m["text"], m["status"]) for m in history] == [("see you later", "received")]
    finally:
        line.stop()


def test_room_verbs_create_invite_say_and_list(line: Line) -> None:
    homes = {name: str(home) for name, home in line.homes.items()}
    for name in "BC":
        added = meshnotes(
            "--home", homes[name], "contacts", "add", line.ids["A"], "--name", "alice"
        )
        assert added.returncode == 0, added.stderr
    contacts = json.loads(meshnotes("--home", homes["B"], "contacts", "--json").stdout)
    assert [(c["peer_id"], c["name"], c["verified"]) for c in contacts] == [
        (line.ids["A"], "alice", False)
    ]
    created = meshnotes("--home", homes["A"], "room", "new", "team", "--json")
    room_id = json.loads(created.stdout)["room_id"]
    for name in "BC":
        invited = meshnotes("--home", homes["A"], "room", "invite", "team", line.ids[name])
        assert invited.returncode == 0, invited.stderr
    poll_json(
        ["--home", homes["C"], "room", "list", "--json"],
        lambda rooms: rooms and len(rooms[0]["members"]) == 3,
    )
    said = meshnotes("--home", homes["C"], "say", room_id[:10], "hi all")
    assert said.returncode == 0, said.stderr
    poll_json(
        ["--home", homes["A"], "history", "team", "--json"],
        lambda h: [m["text"] for m in h] == ["hi all"],
    )
    removed = meshnotes("--home", homes["A"], "room", "remove", "team", line.ids["C"])
    assert removed.returncode == 0 and "epoch 1" in removed.stdout
    unknown = meshnotes("--home", homes["A"], "say", "no-such-room", "x")
    assert unknown.returncode == 1 and "no room matches" in unknown.stderr
