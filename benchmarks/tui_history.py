"""Issue 25, row 4: long histories — 1,000,000 messages stored, a room of 100,000 of them.

A fresh home's node makes two rooms; then 1,000,000 messages (100,000 with
--quick) go straight into its database in SQL (as :mod:`benchmarks.search`
does), every tenth in the room "team", the rest across 49 other
conversations; the room "quiet" keeps 10. Measured:

- opening "team" in the UI (headless, under Pilot): from `MainScreen.open` to
  the first frame with its last message laid out, "team" and "quiet" opened
  in turn so that each open is a switch; the median;
- scroll-back: 20 pages in a row, each from scrolling to the top to the first
  frame with the page before added and the view back where it was (the
  message that was first at the top); the median and the worst;
- `meshnotes history team --limit 50` as a process (no node running: it
  reads the database), to its exit, after one run that warms the bytecode
  cache; the median of 5; and the same read
  (`Session.history`) inside the UI's process, the median of 20;
- the UI's cold start on that home, as in figure 6 (:mod:`benchmarks.tui_start`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Row, percentile
from benchmarks.pilot import FrameClock, ui
from benchmarks.search import fill
from benchmarks.tui_start import one
from mesh.wire.identity import encode_peer_id
from tui.main_screen import MainScreen
from tui.widgets.chat_view import ChatView
from tui.widgets.message_line import MessageList

FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
INSERT INTO messages (msg_id, conv_id, author, text, ts, seq, status, stored_at, epoch, idx)
SELECT printf('%064x', i), CASE WHEN i % 10 = 0 THEN :room ELSE 'conv' || (i % 49) END,
       CASE WHEN i % 3 = 0 THEN :me ELSE :other END,
       'message ' || i || ' about w' || abs(random() % 5000) || ' and some more words',
       1700000000000 + i, i, 'received', 0, 0, i
FROM n
"""
PAGES = 20
TARGETS = {"open": 0.3, "page": 0.05, "history": 0.1, "start": 1.0}


async def _in_ui(home: Path, count: int, opens: int) -> dict[str, Any]:
    data: dict[str, Any] = {"open_s": [], "open_quiet_s": [], "page_s": []}
    async with ui(home) as (session, app, pilot):
        team, quiet = session.new_room("team"), session.new_room("quiet")
        for i in range(10):
            session.say(quiet, f"quiet {i}")
        other = encode_peer_id(os.urandom(32))
        store = session.chat.store
        data["fill_s"] = fill(store, count, FILL, room=team, me=session.me, other=other)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        view = screen.query_one(ChatView)
        scroll = view.query_one(MessageList)
        clock = FrameClock(app)

        def laid_out() -> bool:  # the block drawing the last message is on screen
            last = next(reversed(view.lines.values()), None)
            block = None if last is None else last.block
            return block is not None and block.is_mounted and block.region.height > 0

        for _ in range(opens):
            for room, key in ((team, "open_s"), (quiet, "open_quiet_s")):
                wall, _ = await clock.time(
                    lambda r=room: screen.open("room", r),  # type: ignore[misc]
                    lambda r=room: view.conv_id == r and laid_out(),
                )
                data[key].append(wall)
                await pilot.pause()
        for _ in range(20):  # the read under `history`, without the process around it
            t0 = time.perf_counter()
            session.history(team, 50)
            data.setdefault("history_read_s", []).append(time.perf_counter() - t0)
        screen.open("room", team)
        await pilot.pause()
        for _ in range(PAGES):  # scrolled to the top, a page comes and the place is kept
            shown = len(view.lines)
            wall, _ = await clock.time(
                lambda: scroll.scroll_home(animate=False),
                lambda n=shown: (
                    len(view.lines) > n
                    and (first := next(iter(view.lines.values())).block) is not None
                    and first.is_mounted
                    and scroll.scroll_y > 0
                ),
            )
            data["page_s"].append(wall)
            await pilot.pause()
        shown = list(view.lines)
        expected = session.history(team, len(shown))
        assert shown == [m["id"] for m in expected], "the pages are the room's last messages"
    return data


def _history(home: Path, runs: int) -> list[float]:
    """The process's times, after one run that warms the page cache and the bytecode (as
    any second run has them: an installed package's modules are compiled when installed;
    here bytecode goes to a cache beside the home, written even under
    PYTHONDONTWRITEBYTECODE, which would make every run compile every module again)."""
    exe = os.path.join(os.path.dirname(os.sys.executable), "meshnotes")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(home.parent / "pycache")
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(
            [exe, "--home", str(home), "history", "team", "--limit", "50"],
            check=True,
            capture_output=True,
            cwd=ROOT,
            env=env,
        )
        times.append(time.perf_counter() - t0)
    return times[1:]


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    count = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="mn-history-", dir="/tmp") as tmp:
        home = Path(tmp) / "h"
        data = asyncio.run(_in_ui(home, count, opens=3 if quick else 5))
        (home / "meshnotes.toml").write_text('listen = "127.0.0.1:0"\n')  # no LAN
        data["history_s"] = _history(home, 3 if quick else 5)
        one(str(home))  # warm the page cache and bytecode, as any second start would be
        data["start_s"] = [one(str(home)) for _ in range(2 if quick else 3)]
        data["db_mb"] = sum(f.stat().st_size for f in home.glob("*.db*")) / 1e6
    room = count // 10
    where = f"{count:,} messages stored"
    return [
        _row(
            f"4. open a {room:,}-message room in the UI (median)",
            data["open_s"],
            "open",
            f"{where} ({data['fill_s']:.0f} s to fill, {data['db_mb']:.0f} MB); "
            f"{len(data['open_s'])} opens, max {max(data['open_s']):.3f} s",
            baseline=data["open_quiet_s"],
            baseline_name="a 10-message room",
        ),
        _row(
            "4. scroll-back page of 50 messages (median)",
            data["page_s"],
            "page",
            f"{PAGES} pages in a row, max {max(data['page_s']) * 1000:.1f} ms",
        ),
        _row(
            "4. `history team --limit 50` process (median)",
            data["history_s"],
            "history",
            f"{where}; the whole process, start to exit (bytecode cached); max "
            f"{max(data['history_s']) * 1000:.0f} ms; the read alone, in the UI's process: "
            f"{percentile(data['history_read_s'], 50) * 1000:.1f} ms",
        ),
        _row(
            "4. TUI cold start to main screen, long history (median)",
            data["start_s"],
            "start",
            f"{where}; in a pty as figure 6, max {max(data['start_s']):.2f} s",
        ),
    ], data


def _row(
    figure: str,
    seconds: list[float],
    target: str,
    notes: str,
    baseline: list[float] | None = None,
    baseline_name: str = "",
) -> Row:
    """The row of a median (and a baseline's) against its target (in ms when the target is
    under a second)."""
    median, limit = percentile(seconds, 50), TARGETS[target]
    scale, unit = (1000, "ms") if limit < 1 else (1, "s")
    return Row(
        figure,
        median * scale,
        unit,
        baseline=None if baseline is None else percentile(baseline, 50) * scale,
        baseline_name=baseline_name,
        target=f"<= {limit * scale:g} {unit}",
        passed=median <= limit,
        notes=notes,
    )
