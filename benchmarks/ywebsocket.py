"""The y-websocket reference server (npm `y-websocket@1.5`, run by `node`), as a baseline.

Installed with npm into a temporary directory for each use; when `node` or
`npm` is missing, or the install fails, :func:`reference_server` yields the
reason instead of an address, and the benchmark says "baseline not measured".
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Proc

Y_WEBSOCKET = "y-websocket@1.5"


def _install(root: Path) -> Path | str:
    """The y-websocket server script, installed under `root`; or why not."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node or npm is not on PATH"
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", Y_WEBSOCKET, "yjs@13"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    script = root / "node_modules" / "y-websocket" / "bin" / "server.js"
    if done.returncode or not script.exists():
        return f"npm install {Y_WEBSOCKET} failed: {done.stderr.strip()[-200:]}"
    return script


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Reference:
    """A running reference server (`url`: `ws://127.0.0.1:PORT`, add `/ROOM`), or why not."""

    url: str | None
    error: str | None = None


@contextmanager
def reference_server() -> Iterator[Reference]:
    """Install and start the reference server; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="mnyws") as tmp:
        script = _install(Path(tmp))
        if isinstance(script, str):
            yield Reference(None, script)
            return
        port = _free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        server = Proc(["node", str(script)], "y-websocket", env=env)
        try:
            line = server.readline(30)
            if "running" not in line:
                yield Reference(None, f"the y-websocket server said {line!r}")
            else:
                yield Reference(f"ws://127.0.0.1:{port}")
        finally:
            server.stop()
