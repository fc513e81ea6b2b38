"""``meshnotes demo`` end to end, as a person runs it: in a terminal, with keys.

The real command runs in a pseudo-terminal (stdlib ``pty``, 120x36,
TERM=xterm-256color); a thread drains its output the whole time so the app
never blocks on a full terminal, and the test searches that output with the
ANSI escapes stripped. The child's TMPDIR is a directory of this test's own,
so the demo's temporary homes (``meshnotes-demo-*``) can be checked to appear
and to be gone after quitting without other runs on the machine interfering;
it is made directly in the system temp dir because the homes hold control
sockets, whose paths must stay short (about 100 bytes).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import deadline

COLUMNS, LINES = 120, 36
ANSI = re.compile(
    rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])"
)
DOWN, ENTER, CTRL_Q = "\x1b[B", "\r", "\x11"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")


def demo_command() -> list[str]:
    script = Path(sys.executable).with_name("meshnotes")
    if script.exists():
        return [str(script), "demo"]
    return [sys.executable, "-m", "tui.cli", "demo"]


class Terminal:
    """A child process on a pseudo-terminal, its output kept as it comes."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.master = master
        self.process = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            start_new_session=True,
        )
        os.close(slave)
        self._output = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._output += chunk

    def text(self) -> str:
        with self._lock:
            raw = bytes(self._output)
        return ANSI.sub(b"", raw).decode("utf-8", errors="replace")

    def wait_for(self, *needles: str, until: float) -> None:
        """Poll the output until every needle shows up, or fail with what the screen said."""
        while not all(needle in self.text() for needle in needles):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the demo exited ({self.process.returncode}) before showing {needles}:\n"
                    + self.tail()
                )
            if time.monotonic() > until:
                raise AssertionError(
                    f"timed out waiting for {needles}; the end of the output:\n" + self.tail()
                )
            time.sleep(0.05)

    def tail(self) -> str:
        return self.text()[-3000:]

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(5)
        os.close(self.master)


def demo_dirs(tmp: Path) -> set[Path]:
    return set(tmp.glob("meshnotes-demo-*"))


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mn-smoke-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_demo_answers_across_two_hops_and_cleans_up_on_quit(short_tmp: Path) -> None:
    tmp = short_tmp / "tmp"
    tmp.mkdir()
    env = dict(os.environ)
    env.update(
        TERM="xterm-256color",
        COLUMNS=str(COLUMNS),
        LINES=str(LINES),
        TMPDIR=str(tmp),
        MESHNOTES_HOME=str(short_tmp / "home"),
    )
    for name in ("TEXTUAL", "TEXTUAL_DRIVER", "NO_COLOR"):
        env.pop(name, None)
    before = demo_dirs(tmp)
    until = deadline(60)
    terminal = Terminal(demo_command(), env)
    try:
        terminal.wait_for("Rooms", "welcome", until=until)
        assert len(demo_dirs(tmp) - before) == 1, "the demo keeps its homes in one temporary dir"

        # the sidebar has focus: the first entry below the "Rooms" heading is the room
        terminal.type(DOWN + ENTER)
        terminal.wait_for("Write a message", "Say something", until=until)
        terminal.type("hello from the smoke test" + ENTER)
        terminal.wait_for("third peer here, 2 hops away", until=until)

        terminal.type(CTRL_Q)
        try:
            code = terminal.process.wait(20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the demo did not exit within 20 s of ctrl+q") from None
        assert code == 0, terminal.tail()
    finally:
        terminal.close()
    assert demo_dirs(tmp) == before, "quitting deletes the demo's temporary homes"
