"""SIGTERM and SIGHUP stop the UI and the demo cleanly (issue 20, item 8): the demo's
temporary homes are deleted, the UI's node removes its control socket.

The commands run in a pseudo-terminal as in tests/tui/test_demo_smoke.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import deadline
from tests.tui.test_demo_smoke import COLUMNS, LINES, Terminal, demo_command, demo_dirs, short_tmp

__all__ = ["short_tmp"]  # the fixture, used by name

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")


def terminal_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(LINES), TMPDIR=str(root))
    for name in ("TEXTUAL", "TEXTUAL_DRIVER", "NO_COLOR", "MESHNOTES_HOME"):
        env.pop(name, None)
    return env


def wait_exit(terminal: Terminal) -> int:
    try:
        return terminal.process.wait(30)
    except subprocess.TimeoutExpired:
        raise AssertionError("no exit within 30 s of the signal:\n" + terminal.tail()) from None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_the_demo_deletes_its_homes(short_tmp: Path, signum: int) -> None:
    env = terminal_env(short_tmp)
    env["MESHNOTES_HOME"] = str(short_tmp / "home")
    terminal = Terminal(demo_command(), env)
    try:
        terminal.wait_for("Rooms", "welcome", until=deadline(60))
        assert len(demo_dirs(short_tmp)) == 1
        terminal.process.send_signal(signum)
        wait_exit(terminal)
    finally:
        terminal.close()
    assert demo_dirs(short_tmp) == set(), "a signal to the demo leaves no identities behind"


def test_sigterm_to_the_ui_stops_its_node_and_removes_the_control_socket(
    short_tmp: Path,
) -> None:
    home = short_tmp / "h"
    command = demo_command()[:-1]  # meshnotes, without the verb
    init = [*command, "--home", str(home), "init", "--name", "alice"]
    subprocess.run(init, check=True, capture_output=True, timeout=60)
    (home / "meshnotes.toml").write_text('listen = "127.0.0.1:0"\nlan = false\n')
    terminal = Terminal([*command, "--home", str(home)], terminal_env(short_tmp))
    try:
        terminal.wait_for("Rooms", until=deadline(60))
        assert (home / "control.sock").exists()
        terminal.process.send_signal(signal.SIGTERM)
        assert wait_exit(terminal) == 0, terminal.tail()
    finally:
        terminal.close()
    assert not (home / "control.sock").exists()
