"""What the UI imports before its main screen shows: not what it shows only later.

The Markdown preview, picture previews (Pillow, textual-image: asked for in a thread
while the node starts, tui.widgets.picture) and the screens opened by a key are
imported when first used; importing them at start cost the cold start (issue 25).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LATER = ("markdown_it", "PIL", "textual_image", "tui.search_screen", "tui.history_screen")


def test_the_app_and_its_main_screen_import_nothing_they_show_only_later() -> None:
    script = (
        "import json, sys\n"
        "import tui.app, tui.main_screen, tui.verbs.node\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "tui.main_screen" in loaded  # (the script did import the UI)
    assert [m for m in loaded if m.split(".")[0] in LATER or m in LATER] == []
