"""Attachments through the command line, and resuming after kill -9 of each role.

Three node processes A <- B <- C (tests/integration/test_cli_line.py's line):
A sends C a file larger than C fetches on its own, ``files get`` on C fetches
it through B, and one of the three is killed with SIGKILL half-way and started
again; the file still arrives whole, and C fetches again only what it lacked.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from chat.files.format import CHUNK_SIZE
from chat.files.swarm import WINDOW
from crdt.client import Client
from tests.conftest import deadline
from tests.integration.test_cli_line import BASE, Line, meshnotes
from tests.integration.test_cli_line import line as line  # the fixture, shared

#: larger than the default auto_download (16 MiB): C fetches it when told
SIZE = 24 * 1024 * 1024


def node(line: Line, name: str) -> Client:
    return Client(line.homes[name] / "control.sock")


def wait_for(condition: Any, seconds: float, what: str) -> Any:
    end = deadline(seconds)
    while True:
        try:
            value = condition()
        except Exception:  # a node restarting: its socket comes back
            value = None
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def have(line: Line, file_id: str) -> int:
    shown = [f for f in node(line, "C").files_list() if f["file_id"] == file_id]
    return int(shown[0]["have_bytes"]) if shown else -1


def send(line: Line, tmp_path: Path) -> tuple[str, bytes]:
    wait_for(
        lambda: any(r["dest"] == line.ids["C"] for r in node(line, "A").status()["routes"]),
        30,
        "a route from A to C",
    )
    data = os.urandom(SIZE)
    (tmp_path / "big.bin").write_bytes(data)
    result = meshnotes(
        "--home", str(line.homes["A"]), "send-file", line.ids["C"], str(tmp_path / "big.bin"),
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sent = json.loads(result.stdout)
    assert set(sent) == {"file_id", "message_id"}
    assert "sealing big.bin: 100% of 24.0 MiB" in result.stderr  # the progress line, at its end
    wait_for(lambda: have(line, sent["file_id"]) == 0, 30, "C hears of the file")
    return sent["file_id"], data


def get(line: Line, file_id: str, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*BASE, "--home", str(line.homes["C"]), "files", "get", file_id, str(out),
         "--timeout", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.timeout(600)
@pytest.mark.parametrize("victim", ["A", "B", "C"])
def test_a_transfer_resumes_after_kill_9_of_the_holder_the_relay_or_the_fetcher(
    line: Line, tmp_path: Path, victim: str
) -> None:
    file_id, data = send(line, tmp_path)
    out = tmp_path / "out.bin"
    getter = get(line, file_id, out)
    held = wait_for(
        lambda: (lambda n: n if SIZE // 4 <= n < SIZE else 0)(have(line, file_id)),
        300,
        "C holds part of the file",
    )
    line.procs.pop(victim).send_signal(signal.SIGKILL)
    if victim == "C":
        getter.wait(timeout=60)  # its node is gone: it fails, and is asked again below
    line.start(victim)
    if victim == "C":
        # the part file and its chunk records survived: C goes on where it stopped
        assert have(line, file_id) >= held - WINDOW * CHUNK_SIZE
        getter = get(line, file_id, out)
    stdout, stderr = getter.communicate(timeout=600)
    assert getter.returncode == 0, stderr
    assert stdout.strip() == f"saved {out}"
    assert "% of 24.0 MiB" in stderr  # the progress line
    assert out.read_bytes() == data
    counters = node(line, "C").status()["counters"]
    chunks = SIZE // CHUNK_SIZE
    if victim == "C":  # fetched since the restart: what it lacked, not the whole file
        assert counters["files_chunks_fetched"] <= chunks - held // CHUNK_SIZE + WINDOW
    # a chunk fetched twice: one whose request was asked again after the kill
    assert counters.get("files_chunks_duplicate", 0) <= WINDOW


def test_files_list_and_get_read_the_database_when_no_node_runs(line: Line, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_text("hello, files\n")
    result = meshnotes(
        "--home", str(line.homes["A"]), "send-file", line.ids["B"], str(small), "--json"
    )
    assert result.returncode == 0, result.stderr
    file_id = json.loads(result.stdout)["file_id"]
    # the link a note uses (docs/files.md, *Links from notes*), while A's node runs
    linked = meshnotes("--home", str(line.homes["A"]), "files", "link", file_id[:8])
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.strip() == f"[small.txt](meshnotes:file/{file_id})"
    wait_for(
        lambda: [f["state"] for f in node(line, "B").files_list()] == ["complete"],
        60,
        "B fetches it on its own (it is small)",
    )
    line.stop_one("B")
    listed = meshnotes("--home", str(line.homes["B"]), "files", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [
        {"file_id": file_id, "name": "small.txt", "size": 13, "state": "complete",
         "have_bytes": 13}
    ]  # fmt: skip
    saved = tmp_path / "saved"
    saved.mkdir()
    got = meshnotes("--home", str(line.homes["B"]), "files", "get", file_id[:8], str(saved))
    assert got.returncode == 0, got.stderr
    assert (saved / "small.txt").read_text() == "hello, files\n"  # OUT a directory: its name
    linked = meshnotes("--home", str(line.homes["B"]), "files", "link", file_id, "--json")
    assert json.loads(linked.stdout) == {
        "file_id": file_id, "name": "small.txt", "link": f"[small.txt](meshnotes:file/{file_id})"
    }  # fmt: skip
    unknown = meshnotes("--home", str(line.homes["B"]), "files", "link", "abcd")
    assert unknown.returncode != 0 and "no file 'abcd'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    bad = meshnotes("--home", str(line.homes["B"]), "files", "get", "zzzz", str(tmp_path))
    assert bad.returncode != 0 and "no file 'zzzz'" in bad.stderr
    assert "Traceback" not in bad.stderr
