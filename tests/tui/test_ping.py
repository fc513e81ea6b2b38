"""``meshnotes ping``: a line per reply as it comes, a ping(8)-style summary, Ctrl-C keeps
what came (issue 20, item 7). The node is a stand-in; tests/integration/test_cli_line.py
pings across real nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tui.verbs.node
from tui.cli import main


class FakeNode:
    """Answers pings from a script: an rtt (a reply), None (lost), or KeyboardInterrupt."""

    def __init__(self, script: list[float | type[BaseException] | None], capsys: Any) -> None:
        self.script = script
        self.capsys = capsys
        self.seen_before_call: list[str] = []

    def ping(self, peer: str, count: int, interval: float, timeout: float) -> list[dict[str, Any]]:
        assert count == 1  # one at a time, so each reply prints as it comes
        self.seen_before_call.append(self.capsys.readouterr().out)
        step = self.script.pop(0)
        if isinstance(step, type):
            raise step()
        if step is None:
            return [{"seq": 1, "lost": True}]
        return [{"seq": 1, "rtt_ms": step, "hops": 2}]


def ping(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path, script: list[Any], *args: str
) -> tuple[int, FakeNode, str, str]:
    node = FakeNode(script, capsys)
    monkeypatch.setattr(tui.verbs.node, "client", lambda home: node)
    code = main(["--home", str(tmp_path / "h"), "ping", "bob", "--interval", "0", *args])
    out, err = capsys.readouterr()
    return code, node, "".join(node.seen_before_call[1:]) + out, err


def test_each_reply_prints_as_it_comes_then_a_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, node, out, err = ping(monkeypatch, capsys, tmp_path, [1.0, None, 3.0], "-c", "3")
    assert code == 0 and err == ""
    # the first reply was on stdout before the second ping went out
    assert node.seen_before_call[1] == "seq=1 hops=2 time=1.00 ms\n"
    assert out.splitlines() == [
        "seq=1 hops=2 time=1.00 ms",
        "seq=2 no reply within 5 s",
        "seq=3 hops=2 time=3.00 ms",
        "--- bob ping statistics ---",
        "3 sent, 2 received, 33% loss",
        "rtt min/avg/max = 1.00/2.00/3.00 ms",
    ]


def test_ctrl_c_prints_the_summary_of_the_replies_so_far(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    script = [2.0, 4.0, KeyboardInterrupt]
    code, _, out, _ = ping(monkeypatch, capsys, tmp_path, script, "-c", "10")
    assert code == 130
    assert out.splitlines()[-3:] == [
        "--- bob ping statistics ---",
        "2 sent, 2 received, 0% loss",
        "rtt min/avg/max = 2.00/3.00/4.00 ms",
    ]


def test_ctrl_c_with_json_prints_the_replies_so_far(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    script = [2.0, KeyboardInterrupt]
    code, _, out, _ = ping(monkeypatch, capsys, tmp_path, script, "-c", "5", "--json")
    assert code == 130
    assert json.loads(out) == [{"rtt_ms": 2.0, "hops": 2}]


def test_no_reply_at_all_is_exit_1_with_the_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, out, _ = ping(monkeypatch, capsys, tmp_path, [None], "--timeout", "1")
    assert code == 1
    assert out.splitlines() == [
        "seq=1 no reply within 1 s",
        "--- bob ping statistics ---",
        "1 sent, 0 received, 100% loss",
    ]


@pytest.mark.parametrize("args", [["--interval", "-1"], ["--timeout", "0"]])
def test_an_interval_or_timeout_out_of_range_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]
) -> None:
    code = main(["--home", str(tmp_path / "h"), "ping", "bob", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--interval must be" in err
