"""Every example script runs to the end and shows what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_three_peers_ping_example_pings_across_the_relay() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "three_peers_ping.py")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "route to carol: 2 hops" in result.stdout
    assert result.stdout.count("hops=2)") == 3
