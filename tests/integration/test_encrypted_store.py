"""An encrypted store (issue 21): with a passphrase set, no file of the home holds a message,
a note or a contact name in the clear, and the command line still reads them back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chat import contacts, tables
from crdt import notes
from mesh.errors import MeshError
from mesh.runtime.home import Home
from mesh.wire.identity import Identity
from tests.integration.test_cli_line import BASE, poll_json

MARKERS = {
    "dm": "dm-marker-qz7Tw",
    "room": "room-marker-Vb3kQ",
    "note": "note-marker-Lp9Xe",
    "contact": "contact-marker-Hn4Rj",
}


def run(*args: str, passphrase: Path | None) -> subprocess.CompletedProcess[str]:
    given = ["--passphrase-file", str(passphrase)] if passphrase else []
    env = {k: v for k, v in os.environ.items() if k != "MESHNOTES_PASSPHRASE"}
    return subprocess.run(
        [*BASE, *given, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def files_holding(home: Path, markers: list[str]) -> dict[str, list[str]]:
    """Which files under `home` hold each marker, in raw bytes (the database, its WAL,
    journals, logs: every file)."""
    found: dict[str, list[str]] = {}
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for marker in markers:
                if marker.encode() in data:
                    found.setdefault(marker, []).append(path.name)
    return found


class Pair:
    """Two headless nodes, B dialing A, each home with its own passphrase."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.homes = {n: root / n for n in "AB"}
        self.secrets = {n: root / f"{n}.pass" for n in "AB"}
        self.ids: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        for name in "AB":
            self.secrets[name].write_text(f"passphrase of {name}\n")
            made = run(
                "--home",
                str(self.homes[name]),
                "init",
                "--name",
                name,
                passphrase=self.secrets[name],
            )
            assert made.returncode == 0, made.stderr
            assert "not encrypted" not in made.stderr
            self.ids[name] = made.stdout.strip()

    def cli(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run("--home", str(self.homes[name]), *args, passphrase=self.secrets[name])

    def start(self) -> None:
        address = ""
        for name in "AB":
            args = ["--passphrase-file", str(self.secrets[name]), "--home", str(self.homes[name])]
            args += [
                "run",
                "--headless",
                "--no-auto-connect",
                "--no-lan",
                "--listen",
                "127.0.0.1:0",
            ]
            if address:
                args += ["--peer", address]
            log = (self.root / f"{name}.log").open("a")  # outside the home
            self.procs[name] = proc = subprocess.Popen(
                [*BASE, *args], stdout=subprocess.PIPE, stderr=log, text=True
            )
            log.close()
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "listening on" in line, proc.communicate()
            address = line.split()[-1]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    pair = Pair(tmp_path)
    try:
        yield pair
    finally:
        pair.stop()


def json_of(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.timeout(300)  # some 25 commands, each unlocking the key file (argon2id, 64 MiB)
def test_no_marker_text_is_in_any_file_of_an_encrypted_home_yet_the_cli_reads_it(
    pair: Pair,
) -> None:
    pair.start()
    a, b = "A", "B"
    assert pair.cli(a, "contacts", "add", pair.ids[b], "--name", MARKERS["contact"]).returncode == 0
    assert pair.cli(a, "dm", pair.ids[b], MARKERS["dm"]).returncode == 0
    room = json_of(pair.cli(a, "room", "new", "team", "--json"))["room_id"]  # type: ignore[index]
    assert pair.cli(a, "room", "invite", "team", pair.ids[b]).returncode == 0
    note = json_of(pair.cli(a, "note", "new", "team", "plans", "--json"))["note_id"]  # type: ignore[index]
    assert pair.cli(a, "note", "append", note, MARKERS["note"]).returncode == 0
    home_b = ["--passphrase-file", str(pair.secrets[b]), "--home", str(pair.homes[b])]
    poll_json([*home_b, "room", "list", "--json"], lambda rooms: rooms)
    assert pair.cli(b, "room", "join", "team").returncode == 0
    poll_json(
        [*home_b, "room", "list", "--json"], lambda rooms: rooms and len(rooms[0]["members"]) == 2
    )
    assert pair.cli(a, "say", room[:12], MARKERS["room"]).returncode == 0
    poll_json(
        [*home_b, "history", pair.ids[a], "--json"], lambda h: h and h[0]["text"] == MARKERS["dm"]
    )
    poll_json(
        [*home_b, "history", "team", "--json"],
        lambda h: [m["text"] for m in h] == [MARKERS["room"]],
    )
    poll_json([*home_b, "note", "list", "--json"], lambda notes: len(notes) == 1)
    # full-text search works inside the encrypted database: through the node...
    found = json_of(pair.cli(b, "search", "qz7Tw", "--json"))
    assert [m["text"] for m in found] == [MARKERS["dm"]]  # type: ignore[index]
    # while the nodes run (their WAL files hold the latest writes) and after they stopped
    markers = list(MARKERS.values())
    assert files_holding(pair.root / "A", markers) == {}
    assert files_holding(pair.root / "B", markers) == {}
    pair.stop()
    assert files_holding(pair.root / "A", markers) == {}
    assert files_holding(pair.root / "B", markers) == {}
    # the readers without a node open the encrypted database with the passphrase
    assert [m["text"] for m in json_of(pair.cli(a, "history", pair.ids[b], "--json"))] == [
        MARKERS["dm"]
    ]  # type: ignore[attr-defined]
    assert [m["text"] for m in json_of(pair.cli(b, "history", "team", "--json"))] == [
        MARKERS["room"]
    ]  # type: ignore[attr-defined]
    assert MARKERS["note"] in pair.cli(a, "note", "cat", note).stdout
    # ... and without one
    found = json_of(pair.cli(a, "search", "Vb3kQ", "--json"))
    assert [m["text"] for m in found] == [MARKERS["room"]]  # type: ignore[index]
    contacts = json_of(pair.cli(a, "contacts", "--json"))
    assert MARKERS["contact"] in [c["name"] for c in contacts]  # type: ignore[attr-defined]
    # without the passphrase, or with a wrong one: one clear line
    locked = run("--home", str(pair.homes[a]), "history", pair.ids[b], passphrase=None)
    assert locked.returncode == 1 and len(locked.stderr.splitlines()) == 1
    assert "passphrase" in locked.stderr
    wrong_file = pair.root / "wrong.pass"
    wrong_file.write_text("not it\n")
    wrong = run("--home", str(pair.homes[a]), "history", pair.ids[b], passphrase=wrong_file)
    assert wrong.returncode == 1 and wrong.stderr.splitlines() == [
        f"meshnotes: error: wrong passphrase for the key file {pair.homes[a] / 'identity.json'}"
    ]


def fill(home: Home, passphrase: str | None, rows: int) -> list[str]:
    """Contacts and messages written into the home's database; the contact names."""
    if passphrase is None:
        home.create_identity("me", passphrase="")
    else:
        home.create_identity("me", passphrase=passphrase)
    _, key = home.unlock(passphrase or "")
    store = home.open_store(key)
    store.migrate_component("names", contacts.MIGRATIONS)  # as the node makes them
    store.migrate_component("chat", tables.MIGRATIONS)
    store.migrate_component("notes", notes.MIGRATIONS)
    names = []
    with store.atomic():
        for i in range(rows):
            peer = Identity.from_seed(i.to_bytes(32, "big")).peer_id
            names.append(f"{MARKERS['contact']}-{i}")
            store.execute(
                "INSERT INTO contacts (peer_id, name, verified, added_at) VALUES (?, ?, 0, 0)",
                (peer, names[-1]),
            )
            store.execute(
                "INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status, stored_at,"
                " epoch, idx) VALUES (?, 'c', 'a', ?, 0, 0, 'received', 0, 0, ?)",
                (f"m{i}", "x" * 2000, i),
            )
    store.close()
    return names


def contact_names(home: Path, passphrase: Path | None) -> list[str]:
    listed = json_of(run("--home", str(home), "contacts", "--json", passphrase=passphrase))
    return sorted(c["name"] for c in listed)  # type: ignore[attr-defined]


def test_passphrase_sets_changes_and_removes_it_keeping_everything(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    names = sorted(fill(home, None, 20))
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("first passphrase\n")
    second.write_text("second passphrase\n")
    marker = MARKERS["contact"]
    assert marker.encode() in (home.root / "meshnotes.db").read_bytes()  # plain before
    set_ = run(
        "--home", str(home.root), "passphrase", "--new-passphrase-file", str(first), passphrase=None
    )
    assert set_.returncode == 0, set_.stderr
    assert files_holding(home.root, [marker]) == {}
    assert contact_names(home.root, first) == names
    wrong = run("--home", str(home.root), "passphrase", "--remove", passphrase=second)
    assert wrong.returncode == 1 and len(wrong.stderr.splitlines()) == 1
    assert "wrong passphrase" in wrong.stderr
    changed = run(
        "--home",
        str(home.root),
        "passphrase",
        "--new-passphrase-file",
        str(second),
        passphrase=first,
    )
    assert changed.returncode == 0, changed.stderr
    assert contact_names(home.root, second) == names
    assert run("--home", str(home.root), "contacts", passphrase=first).returncode == 1
    removed = run("--home", str(home.root), "passphrase", "--remove", passphrase=second)
    assert removed.returncode == 0, removed.stderr
    assert contact_names(home.root, None) == names
    assert sorted(os.listdir(home.root)) == ["identity.json", "meshnotes.db"]


def test_passphrase_refuses_while_the_node_runs(pair: Pair) -> None:
    pair.start()
    new = pair.root / "new.pass"
    new.write_text("new\n")
    refused = pair.cli("A", "passphrase", "--new-passphrase-file", str(new))
    assert refused.returncode == 2 and "stop it first" in refused.stderr
    assert Home(pair.homes["A"]).unlock(pair.secrets["A"].read_text().strip())[1] is not None


def test_a_passphrase_change_killed_at_any_moment_loses_nothing(tmp_path: Path) -> None:
    """kill -9 at several moments of `meshnotes passphrase`: afterwards exactly one of the two
    passphrases opens the home, and the next writer finds every row under it."""
    home = Home(tmp_path / "h")
    names = sorted(fill(home, "pass-0", 3000))  # about 6 MB: the export takes a while
    current = "pass-0"
    for attempt, moment in enumerate([0.3, 0.6, 0.9, 1.2, 1.5, 0.0]):
        old_file, new_file = tmp_path / "old", tmp_path / "new"
        old_file.write_text(current)
        new_file.write_text(f"pass-{attempt + 1}")
        proc = subprocess.Popen(
            [
                *BASE,
                "--home",
                str(home.root),
                "--passphrase-file",
                str(old_file),
                "passphrase",
                "--new-passphrase-file",
                str(new_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        opened = []
        for candidate in (current, f"pass-{attempt + 1}"):
            try:
                opened.append((candidate, home.unlock(candidate)[1]))
            except MeshError:
                continue
        assert len(opened) == 1
        current, key = opened[0]
        store = home.open_store(key)  # finishes or undoes what the kill interrupted
        got = sorted(r["name"] for r in store.query("SELECT name FROM contacts"))
        store.close()
        assert got == names
        assert not (home.root / "meshnotes.db.rekey").exists()
    assert (
        contact_names(home.root, old_file if current == old_file.read_text() else new_file) == names
    )
