"""A note's history: versions kept as bursts of edits end, read with or without a node, restored.

A - B - C: A and C share a note through B. Each peer keeps the versions it saw.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from crdt import versions
from tests.integration.harness import Mesh, room_with
from tests.waiting import wait_until
from tui.cli import main


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command line in a thread: the nodes answer from this test's event loop."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def test_versions_follow_bursts_restore_travels_and_history_reads_offline(
    mesh: Mesh, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(versions, "QUIET", 0.3)  # a burst ends after 0.3 s without edits
    await mesh.line("A", "B", "C")
    room = await room_with(mesh, "A", ["C"])
    notes_a, notes_c = mesh.notes_of("A"), mesh.notes_of("C")
    note_id = notes_a.new(room, "plan")
    notes_a.append(note_id, "- ship it\n")
    notes_a.append(note_id, "- tell everyone\n")  # the same burst of A's
    await wait_until(
        lambda: (
            note_id in {n["note_id"] for n in notes_c.all()}
            and notes_c.cat(note_id) == "- ship it\n- tell everyone\n"
        ),
        what="C has A's edits",
    )
    await wait_until(lambda: len(notes_a.versions.all(note_id)) == 1, what="A's burst ends")
    notes_c.append(note_id, "- tests first\n")  # C's burst: a second version at both
    a_id, c_id = mesh.ids["A"], mesh.ids["C"]
    for notes in (notes_a, notes_c):
        await wait_until(
            lambda n=notes: [v["author"] for v in n.versions.all(note_id)] == [a_id, c_id],
            what="two versions, A's then C's",
        )
    first = notes_a.versions.all(note_id)[0]
    assert (first["version"], first["chars"], first["title"]) == (1, 26, "plan")
    assert notes_a.versions.text(note_id, 2).endswith("- tests first\n")

    # over the control socket, as the CLI asks it
    home_a = str(mesh.root / "A")
    code, out, err = await cli(capsys, "--home", home_a, "note", "history", note_id, "--json")
    assert code == 0, err
    assert [v["version"] for v in json.loads(out)] == [1, 2]
    code, out, err = await cli(capsys, "--home", home_a, "note", "cat", note_id, "--version", "1")
    assert (code, out) == (0, "- ship it\n- tell everyone\n"), err
    code, out, err = await cli(capsys, "--home", home_a, "note", "cat", note_id, "--version", "9")
    assert code != 0 and "no version 9" in err and "1..2" in err

    # restoring version 1 is a new edit: C gets it, and the history grows instead of shrinking
    code, out, err = await cli(capsys, "--home", home_a, "note", "restore", note_id, "1", "--json")
    assert code == 0, err
    assert json.loads(out) == {"note_id": note_id, "version": 1, "length": 26}
    await wait_until(
        lambda: notes_c.cat(note_id) == "- ship it\n- tell everyone\n", what="C gets the restore"
    )
    await wait_until(lambda: len(notes_a.versions.all(note_id)) == 3, what="a third version")

    code, out, err = await cli(capsys, "--home", home_a, "note", "rename", note_id, "launch plan")
    assert code == 0 and "launch plan" in out, err
    await wait_until(
        lambda: [n["title"] for n in notes_c.all()] == ["launch plan"], what="C sees the title"
    )

    # a rename is an edit too: its burst is the fourth version
    await wait_until(lambda: len(notes_a.versions.all(note_id)) == 4, what="a fourth version")
    assert notes_a.versions.all(note_id)[-1]["title"] == "launch plan"
    # with A's node stopped, the history reads from its database
    expected: list[dict[str, Any]] = notes_a.versions.all(note_id)
    await mesh.stop("A")
    code, out, err = await cli(capsys, "--home", home_a, "note", "history", note_id, "--json")
    assert code == 0, err
    assert json.loads(out) == expected
    out_file = tmp_path / "v2.md"
    code, out, err = await cli(
        capsys, "--home", home_a, "note", "export", note_id, str(out_file), "--version", "2"
    )
    assert code == 0, err
    assert out_file.read_text() == "- ship it\n- tell everyone\n- tests first\n"
