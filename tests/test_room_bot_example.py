"""The room bot example joins a room it is invited to and answers a ping there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_room_bot_demo_answers_ping_in_the_room() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "room_bot.py"), "--demo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "bot answered: pong" in result.stdout
