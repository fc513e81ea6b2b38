"""Reads without a node: history, contacts, rooms and notes straight from the home's database.

A node sends, receives and edits a note, then stops; the command line still shows all of it,
the same as the running node did (tui/verbs/offline.py). A reader may also read while a node
writes the same database.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mesh.runtime.home import Home
from mesh.wire.identity import Identity
from tests.integration.harness import Mesh, room_with
from tests.waiting import wait_until
from tui.cli import main
from tui.verbs.offline import OfflineReader


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_history_contacts_rooms_and_notes_read_with_no_node_running(
    mesh: Mesh, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await mesh.line("A", "B")
    room = await room_with(mesh, "A", ["B"])
    a, b = mesh["A"].chat, mesh["B"].chat
    a.contacts.add(mesh.ids["B"], "bob")
    a.send_direct("bob", "hello bob")
    a.say(room, "hello team")
    await wait_until(lambda: len(b.history(mesh.ids["A"])) == 1, what="B has the DM")
    b.send_direct(mesh.ids["A"], "hi alice")
    await wait_until(lambda: len(a.history("bob")) == 2, what="A has the reply")
    await wait_until(
        lambda: [m["status"] for m in a.history("bob")] == ["delivered", "received"],
        what="the DM's receipt",
    )
    notes = mesh.notes_of("A")
    note_id = notes.new(room, "plan")
    notes.append(note_id, "- ship it\n")
    notes.get(note_id).insert(0, "# Plan\n")
    notes.flush(note_id)
    # what the running node shows
    expected = {
        "history": a.history("bob"),
        "room": a.history("team"),
        "contacts": a.contacts.all(),
        "rooms": a.rooms.all(),
        "notes": notes.all(),
        "text": notes.cat(note_id),
    }
    await mesh.stop("A")
    home = str(mesh.root / "A")
    assert not Home(mesh.root / "A").control_socket.exists()

    fields = ("id", "author", "text", "ts", "status")
    history = cli_json(capsys, "--home", home, "history", "bob")
    assert [{k: m[k] for k in fields} for m in history] == [
        {k: m[k] for k in fields} for m in expected["history"]
    ]
    assert [m["text"] for m in history] == ["hello bob", "hi alice"]
    assert [m["text"] for m in cli_json(capsys, "--home", home, "history", "team")] == [
        "hello team"
    ]
    contacts = cli_json(capsys, "--home", home, "contacts")
    presence = [{k: c.pop(k) for k in ("online", "last_seen")} for c in contacts]
    assert contacts == expected["contacts"]
    # with no node, nobody is online; B was seen (its reply came) before A stopped
    assert [p["online"] for p in presence] == [False]
    assert isinstance(presence[0]["last_seen"], float)
    assert cli_json(capsys, "--home", home, "room", "list") == expected["rooms"]
    assert cli_json(capsys, "--home", home, "note", "list") == expected["notes"]

    code, out, err = cli(capsys, "--home", home, "history", "bob")
    assert code == 0, err
    assert "hello bob" in out and "hi alice" in out
    code, out, err = cli(capsys, "--home", home, "contacts")
    assert code == 0 and "bob" in out and mesh.ids["B"] in out, err
    code, out, err = cli(capsys, "--home", home, "room", "list")
    assert code == 0 and "team" in out, err
    code, out, err = cli(capsys, "--home", home, "note", "cat", "plan")
    assert (code, out) == (0, "# Plan\n- ship it\n"), err
    assert out == expected["text"]
    target = tmp_path / "plan.md"
    code, out, err = cli(capsys, "--home", home, "note", "export", "plan", str(target))
    assert code == 0, err
    assert target.read_text(encoding="utf-8") == expected["text"]

    # nothing a reader can name is one line and exit 2, not a traceback
    code, out, err = cli(capsys, "--home", home, "note", "cat", "nothing-called-this")
    assert code == 2 and err.count("\n") == 1 and "no note matches" in err


def test_a_fresh_home_reads_as_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = Home(tmp_path / "fresh")
    home.create_identity("solo")
    for verb in (["contacts"], ["room", "list"], ["note", "list"]):
        assert cli_json(capsys, "--home", str(home.root), *verb) == []
    code, _, err = cli(capsys, "--home", str(home.root), "history", "bob")
    assert code == 2 and err.count("\n") == 1 and "no room or peer matches" in err
    stranger = Identity.generate("stranger").peer_id
    assert cli_json(capsys, "--home", str(home.root), "history", stranger) == []
    assert not home.database.exists()  # a reader makes no database


async def test_reading_while_a_node_writes_the_database(mesh: Mesh) -> None:
    await mesh.line("A", "B")
    room = await room_with(mesh, "A", ["B"])
    a = mesh["A"].chat
    notes = mesh.notes_of("A")
    note_id = notes.new(room, "log")
    reader = OfflineReader(Home(mesh.root / "A"))
    count = 60
    errors: list[BaseException] = []
    seen: list[int] = []
    done = threading.Event()

    def keep_reading() -> None:
        while not done.is_set() and not errors:
            try:
                seen.append(len(reader.history("team", 10_000)))
                reader.contacts_list()
                reader.room_list()
                reader.note_cat(note_id)
            except BaseException as exc:  # the test reports any failure
                errors.append(exc)

    reading = asyncio.create_task(asyncio.to_thread(keep_reading))
    for i in range(count):
        a.say(room, f"line {i}")  # each commits while the reader's thread reads
        notes.append(note_id, f"{i}\n")
        notes.flush(note_id)
        await asyncio.sleep(0)
    await wait_until(lambda: errors or (seen and seen[-1] == count), what="a read of the end")
    done.set()
    await reading
    assert not errors, errors[0]
    assert seen == sorted(seen)  # a reader never sees the database go back
    assert reader.note_cat(note_id)["text"] == "".join(f"{i}\n" for i in range(count))


async def test_history_imports_only_what_the_read_needs(mesh: Mesh) -> None:
    # `history` starts a process for one read: importing the node, the notes or the UI for it
    # cost it seconds, and PyNaCl, the rooms' signed events or sqlite-utils tens of
    # milliseconds (docs/performance.md); a fresh interpreter shows what the verb loads
    await mesh.line("A", "B")
    room = await room_with(mesh, "A", ["B"])
    mesh["A"].chat.say(room, "hello team")
    mesh["A"].chat.send_direct(mesh.ids["B"], "hello bob")
    await mesh.stop("A")
    home = str(mesh.root / "A")
    script = (
        "import json, sys\n"
        "from tui.cli import main\n"
        f"code = main(['--home', {home!r}, 'history', 'team'])\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        f"code += main(['--home', {home!r}, 'history', {mesh.ids['B']!r}])\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # the verb did its whole job, a room's history by name and a peer's: read and printed
    assert "hello team" in done.stdout and "hello bob" in done.stdout
    room_read, both = (set(json.loads(line)) for line in done.stderr.strip().splitlines()[-2:])
    heavy = {"textual", "pycrdt", "websockets", "crdt", "PIL", "textual_image", "zeroconf"}
    heavy |= {"mesh.runtime.node", "mesh.routing.router", "chat.messages", "asyncio"}
    # naming peers and reading the key file's public half need no cryptography; the rooms'
    # module folds signed events; a read-only store reads without sqlite-utils; a given home
    # needs no platform directories
    heavy |= {"nacl", "msgpack", "chat.rooms", "chat.room", "chat.senderkey", "sqlite_utils"}
    heavy |= {"platformdirs", "mesh.wire.identity", "mesh.routing"}
    assert sorted(both & heavy) == []
    # nor, for a room's, what only some reads need: hashing (a direct conversation's id),
    # logging (nothing logs; no --log-level), dataclasses, a passphrase prompt
    assert sorted(room_read & {"hashlib", "logging", "dataclasses", "getpass"}) == []
