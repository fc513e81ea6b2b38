"""Invite codes between two real node processes on 127.0.0.1: A's invite, added on B, carries
B's first direct message to A; a damaged invite is one clear line."""

from __future__ import annotations

import functools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.wire.invite import PREFIX, Invite
from tests.integration.test_cli_line import BASE, meshnotes, poll_json


@functools.cache
def no_lan() -> list[str]:
    """``--no-lan`` where this build has LAN discovery: tests announce nothing on the network."""
    return ["--no-lan"] if "--no-lan" in meshnotes("run", "--help").stdout else []


class Pair:
    """Two headless nodes, alice (A) and bob (B), on free loopback ports, not linked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.homes = {name: str(root / name) for name in "AB"}
        self.ids: dict[str, str] = {}
        self.procs: list[subprocess.Popen[str]] = []
        for name, who in (("A", "alice"), ("B", "bob")):
            made = meshnotes("--home", self.homes[name], "init", "--name", who)
            assert made.returncode == 0, made.stderr
            self.ids[name] = made.stdout.strip()
        for name in "AB":
            args = ["run", "--headless", "--no-auto-connect", "--listen", "127.0.0.1:0"]
            log = (root / f"{name}.log").open("a")
            proc = subprocess.Popen(
                [*BASE, "--home", self.homes[name], *args, *no_lan()],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
            log.close()
            self.procs.append(proc)
            assert proc.stdout is not None
            assert "listening on" in proc.stdout.readline(), proc.communicate()

    def __call__(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return meshnotes("--home", self.homes[name], *args)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    yield pair
    pair.stop()


def test_an_invite_added_as_a_contact_carries_a_dm(pair: Pair) -> None:
    made = pair("A", "invite", "--json")
    assert made.returncode == 0, made.stderr
    answer = json.loads(made.stdout)
    code = answer["invite"]
    assert code.startswith(PREFIX)
    invite = Invite.decode(code, time.time())
    assert (invite.peer_id, invite.name) == (pair.ids["A"], "alice")
    assert invite.addresses and invite.addresses[0][0] == "127.0.0.1"
    assert answer["addresses"] == [str(a) for a in invite.peer_addresses()]

    added = pair("B", "contacts", "add", code)
    assert added.returncode == 0, added.stderr
    assert f"added alice ({pair.ids['A']})" in added.stdout
    assert f"dialing {invite.peer_addresses()[0]}" in added.stdout
    contacts = json.loads(pair("B", "contacts", "--json").stdout)
    assert [(c["peer_id"], c["name"]) for c in contacts] == [(pair.ids["A"], "alice")]

    sent = pair("B", "dm", "alice", "hello through an invite")
    assert sent.returncode == 0, sent.stderr
    history = poll_json(["--home", pair.homes["A"], "history", pair.ids["B"], "--json"], bool)
    assert [(m["author"], m["text"]) for m in history] == [
        (pair.ids["B"], "hello through an invite")
    ]
    poll_json(
        ["--home", pair.homes["B"], "history", "alice", "--json"],
        lambda h: h[0]["status"] == "delivered",
    )


def test_plain_invite_prints_the_code_first_then_its_qr_code(pair: Pair) -> None:
    shown = pair("A", "invite")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(PREFIX)
    Invite.decode(lines[0], time.time())
    qr = [line for line in lines if "█" in line]
    assert len(qr) >= 20 and len({len(line) for line in qr}) == 1  # a square of half blocks
    assert any(pair.ids["A"] in line for line in lines[1:])


def test_connect_dials_an_invite_and_a_named_contact_keeps_its_name(pair: Pair) -> None:
    code = json.loads(pair("A", "invite", "--json").stdout)["invite"]
    dialed = pair("B", "connect", code)
    assert dialed.returncode == 0, dialed.stderr
    poll_json(
        ["--home", pair.homes["B"], "status", "--json"],
        lambda s: pair.ids["A"] in {link["peer_id"] for link in s["links"]},
    )
    assert json.loads(pair("B", "contacts", "--json").stdout) == []  # connect adds no contact
    added = pair("B", "contacts", "add", code, "--name", "al")
    assert added.returncode == 0, added.stderr
    contacts = json.loads(pair("B", "contacts", "--json").stdout)
    assert [(c["peer_id"], c["name"]) for c in contacts] == [(pair.ids["A"], "al")]
    own = pair("A", "contacts", "add", code)
    assert own.returncode == 1 and "this node's own" in own.stderr


def test_a_tampered_invite_is_one_line_and_changes_nothing(pair: Pair) -> None:
    code = json.loads(pair("A", "invite", "--json").stdout)["invite"]
    i = len(PREFIX) + 10
    tampered = code[:i] + ("b" if code[i] != "b" else "c") + code[i + 1 :]
    for verb in (["contacts", "add", tampered], ["connect", tampered], ["connect", code[:-20]]):
        result = pair("B", *verb)
        assert result.returncode != 0, verb
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "invite code" in lines[0], (verb, result.stderr)
        assert "Traceback" not in result.stderr
    assert json.loads(pair("B", "contacts", "--json").stdout) == []
