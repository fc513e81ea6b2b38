"""Tests for the command line (tui.cli, tui.parser, tui.verbs) run in-process, without a node.

Verbs against running nodes are in tests/integration/test_cli_line.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tui.cli import main
from tui.parser import build_parser, named_verb


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_verb_and_action_has_a_function() -> None:
    parser = build_parser()
    for args in (
        ["init"],
        ["id"],
        ["run"],
        ["bridge-token"],
        ["note", "list"],
        ["status"],
        ["ping", "x"],
        ["contacts", "add", "x"],
        ["dm", "x", "hi"],
        ["say", "r", "hi"],
        ["history", "r"],
        ["room", "handover", "r", "x"],
        ["demo"],
        ["connect", "ws://127.0.0.1:1#x"],
    ):
        assert callable(parser.parse_args(args).func), args


def _verbs(parser: argparse.ArgumentParser) -> list[str]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(subparsers[0].choices)


def test_a_command_naming_its_verb_builds_that_verb_alone() -> None:
    # building all 28 verbs' parsers took longer than `history`'s read (docs/performance.md)
    every = _verbs(build_parser())
    assert len(every) > 20 and "history" in every and "room" in every
    only = build_parser(named_verb(["--home", "h", "history", "team", "--limit", "5"]))
    assert _verbs(only) == ["history"]
    args = only.parse_args(["--home", "h", "history", "team", "--limit", "5"])
    assert (args.home, args.conversation, args.limit) == ("h", "team", 5)
    assert args.func == build_parser().parse_args(["history", "team"]).func
    # the others: the verbs' list for --help before the verb, and for a verb that is none
    for argv in (["--help", "history"], ["--he", "history"], ["-h"], ["histroy"]):
        assert _verbs(build_parser(named_verb(argv))) == every, argv


def test_an_unknown_verb_is_named_with_every_verb_it_could_be(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "histroy", "team")
    assert code == 2
    assert "invalid choice: 'histroy'" in err and "'history'" in err and "'forget'" in err


def test_verbs_without_a_node_fail_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(tmp_path / "h")
    assert run(capsys, "--home", home, "init")[0] == 0
    for verb in (
        ["status", "--json"],
        ["ping", "abc"],
        ["connect", "ws://127.0.0.1:1#" + "a" * 52],
    ):
        code, _, err = run(capsys, "--home", home, *verb)
        assert code != 0, verb
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "no node is running" in lines[0], (verb, err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--headless", "--listen", "nope"], "HOST:PORT"),
        (["run", "--headless", "--peer", "ws://127.0.0.1:9"], "#PEERID"),
        (["run", "--headless", "--mesh-key-file", "/nonexistent/key"], "mesh key file"),
        (["run", "--headless", "--rooms", "gossip"], "--rooms"),
        (["ping", "x", "--count", "0"], "--count"),
        (["connect", "http://127.0.0.1:9#abc"], "ws://HOST:PORT#PEERID"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    home = str(tmp_path / "h")
    run(capsys, "--home", home, "init")
    code, _, err = run(capsys, "--home", home, *args)
    assert code == 2
    assert "Traceback" not in err
    assert message in err.strip().splitlines()[-1]


@pytest.mark.parametrize("unbuffered", ["", "1"])
@pytest.mark.parametrize("args", [["--help"], ["config", "--json"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    tmp_path: Path, args: list[str], unbuffered: str
) -> None:
    # `meshnotes status --json | head -1`: the pipe closes before the command writes
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered  # writes fail at once, not at the last flush
    command = [sys.executable, "-m", "tui.cli", "--home", str(tmp_path / "h"), *args]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    err = child.stderr.read().decode()
    code = child.wait(timeout=60)
    assert err == ""
    # argparse itself ignores a failed write of its help, when nothing is buffered
    assert code == (0 if args == ["--help"] and unbuffered else 141)
