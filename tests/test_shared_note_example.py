"""The shared-note example: two peers edit a note, one of them offline, and converge."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_shared_note_example_prints_the_same_converged_text_for_both_peers() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "shared_note.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    texts = dict(re.findall(r"--- (alice|bob) ---\n(.*?)--- end ---", result.stdout, re.S))
    assert set(texts) == {"alice", "bob"}, result.stdout
    assert texts["alice"] == texts["bob"]
    # both edits made while bob was offline are in it, and the first text once
    for part in ("Plan (draft) — ", "Trip to Zürich\n", "- alice: book the train 🚆\n"):
        assert texts["alice"].count(part) == 1, texts["alice"]
