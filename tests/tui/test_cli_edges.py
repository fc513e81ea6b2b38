"""The command line's rough edges of issue 20, item 9: --version, one-line argparse errors,
TEXT from stdin, and a binary mesh key file."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import tui.verbs.chat
from tui.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # --version and --help end through argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version_prints_the_program_and_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("meshnotes ") and len(out.splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [["frobnicate"], ["dm", "bob"], ["history", "r", "--limit", "many"], ["note"], ["--nope"]],
)
def test_an_argument_error_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]
) -> None:
    code, out, err = run(capsys, "--home", str(tmp_path / "h"), *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("meshnotes: error: "), err


class FakeNode:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def dm(self, peer: str, text: str) -> dict[str, Any]:
        self.sent.append(("dm", peer, text))
        return {"id": "m1"}

    def say(self, room: str, text: str) -> dict[str, Any]:
        self.sent.append(("say", room, text))
        return {"id": "m2"}


@pytest.mark.parametrize("verb", ["dm", "say"])
def test_a_dash_reads_the_text_from_stdin(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    verb: str,
) -> None:
    node = FakeNode()
    monkeypatch.setattr(tui.verbs.chat, "client", lambda home: node)
    monkeypatch.setattr("sys.stdin", io.StringIO("two lines\nfrom a pipe\n"))
    code, _, err = run(capsys, "--home", str(tmp_path / "h"), verb, "bob", "-")
    assert (code, err) == (0, "")
    assert node.sent == [(verb, "bob", "two lines\nfrom a pipe")]


def test_an_empty_stdin_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    node = FakeNode()
    monkeypatch.setattr(tui.verbs.chat, "client", lambda home: node)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "--home", str(tmp_path / "h"), "dm", "bob", "-")
    assert code == 2 and node.sent == []
    assert err == "meshnotes: error: the message read from stdin is empty\n"


def test_a_binary_mesh_key_file_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = tmp_path / "mesh.key"
    key.write_bytes(bytes(range(256)))
    home = tmp_path / "h"
    args = ["--home", str(home), "run", "--headless", "--listen", "127.0.0.1:0"]
    code, _, err = run(capsys, *args, "--mesh-key-file", str(key))
    assert code == 2
    assert err.startswith(f"meshnotes: error: the mesh key file {key} is not text: ")
    assert len(err.splitlines()) == 1
    assert "codec" not in err
