"""Tests for the invite verbs (tui.verbs.invite) and the QR drawing (tui.qr), in-process.

The verbs against running nodes are in tests/integration/test_invite_line.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.wire.identity import Identity
from mesh.wire.invite import make_invite
from tui.cli import main
from tui.qr import qr_text

ALICE = Identity.from_seed(bytes(range(32)), "alice")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    home = str(tmp_path / "h")
    assert run(capsys, "--home", home, "init")[0] == 0
    return home


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("meshnotes:1:abc", "damaged or cut short"),
        ("meshnotes:9:abc", "update meshnotes"),
        (make_invite(ALICE, [("127.0.0.1", 1)], 1_000)[:-1] + "a", "altered or damaged"),
        (make_invite(ALICE, [("127.0.0.1", 1)], 1_000), "expired on 1970-01-31"),
    ],
)
@pytest.mark.parametrize("verb", [["connect"], ["contacts", "add"]])
def test_a_bad_invite_is_one_line_even_without_a_node(
    home: str, capsys: pytest.CaptureFixture[str], verb: list[str], code: str, says: str
) -> None:
    status, out, err = run(capsys, "--home", home, *verb, code)
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], err


def test_a_good_invite_without_a_node_says_no_node_runs(
    home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = make_invite(ALICE, [("127.0.0.1", 1)], 4_000_000_000 - 3600)
    for verb in (["invite"], ["invite", "--json"], ["connect", code], ["contacts", "add", code]):
        status, _, err = run(capsys, "--home", home, *verb)
        assert status == 1 and "no node is running" in err, (verb, err)
        assert len(err.strip().splitlines()) == 1


def test_the_qr_code_is_a_square_of_half_blocks_without_escape_codes() -> None:
    drawn = qr_text(make_invite(ALICE, [("192.168.1.20", 7878)], 1_000))
    lines = drawn.splitlines()
    assert "\x1b" not in drawn and set(drawn) <= set("█▀▄ \n")
    assert len({len(line) for line in lines}) == 1
    # two module rows per line: about half as many lines as columns
    assert len(lines) <= len(lines[0]) // 2 + 2
