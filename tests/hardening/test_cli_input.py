"""Threat 8: bad local input through the CLI => one clear error line, non-zero exit, nothing lost.

Bad arguments and verbs without a node are covered by tests/integration/test_cli_line.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli_line import BASE, Line, meshnotes


def one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("meshnotes:")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("meshnotes: error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Line]:
    line = Line(tmp_path)
    line.start("A")
    yield line
    line.stop()


def test_unknown_peer_names_and_bad_addresses_are_one_line(node: Line) -> None:
    home = str(node.homes["A"])
    one_error_line(meshnotes("--home", home, "dm", "nobody-by-that-name", "hi"), "nobody")
    one_error_line(meshnotes("--home", home, "history", "zzzz"), "zzzz")
    one_error_line(meshnotes("--home", home, "connect", "ws://127.0.0.1:1"), "ws://127.0.0.1:1")
    one_error_line(meshnotes("--home", home, "connect", "http://x#abc"))
    one_error_line(meshnotes("--home", home, "room", "invite", "nope", "nobody"))
    assert meshnotes("--home", home, "status").returncode == 0  # the node is unharmed


@pytest.mark.parametrize("damage", ["garbage", "directory", "truncated"])
def test_a_corrupt_or_unreadable_database_is_one_line_and_left_as_it_was(
    tmp_path: Path, damage: str
) -> None:
    home = tmp_path / "h"
    assert meshnotes("--home", str(home), "init").returncode == 0
    db = home / "meshnotes.db"
    if damage == "garbage":
        db.write_bytes(os.urandom(8192))
    elif damage == "directory":
        db.mkdir()
    else:  # a real database cut in half
        run = subprocess.Popen(
            [*BASE, "--home", str(home), "run", "--headless", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert run.stdout is not None and "listening" in run.stdout.readline()
        run.terminate()
        run.wait(20)
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2] + os.urandom(len(data) // 2))
    before = db.read_bytes() if db.is_file() else None
    result = meshnotes("--home", str(home), "run", "--headless", "--listen", "127.0.0.1:0")
    one_error_line(result, "database")
    if before is not None:
        assert db.read_bytes() == before, "the damaged database was changed"
    assert not (home / "control.sock").exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_loses_nothing_already_sent(tiny_disk: Path) -> None:
    line = Line(tiny_disk)
    try:
        line.start("AB")
        home_a = str(line.homes["A"])
        assert meshnotes("--home", home_a, "contacts", "add", line.ids["B"]).returncode == 0
        first = meshnotes("--home", home_a, "dm", line.ids["B"], "before the disk filled")
        assert first.returncode == 0, first.stderr
        filler = tiny_disk / "filler"
        # fill the disk to the last block (unbuffered: closing must not fail on a flush)
        with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\x00" * 65536)
        big = "x" * 15_000
        failures = [
            meshnotes("--home", home_a, "dm", line.ids["B"], f"{big} {i}") for i in range(8)
        ]
        failed = [r for r in failures if r.returncode != 0]
        assert failed, "nothing failed: the disk was not full"
        for result in failed:
            one_error_line(result)
        filler.unlink()
        history = meshnotes("--home", home_a, "history", line.ids["B"], "--json")
        assert history.returncode == 0, history.stderr
        assert "before the disk filled" in history.stdout
        assert meshnotes("--home", home_a, "dm", line.ids["B"], "after").returncode == 0
    finally:
        line.stop()
