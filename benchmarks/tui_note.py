"""Issue 25, row 3: a 1 MB Markdown note in the UI — opening it, and a keystroke in it.

Headless under Pilot (:mod:`benchmarks.pilot`), on a fresh home's own node. A
room holds a 1 MB Markdown note (headings, paragraphs, lists, code, links)
and a 1 KB one. Opening: from `MainScreen.open` to the first frame that
shows the note, opening the big and the small note in turn (so each open
is a switch, the last note written out and the next one read), the median
of the big note's opens. Keystroke: a character typed at the top of the
note as the terminal delivers it, to the first frame that shows it, one every
30 ms; the same in the 1 KB note in the same run is the baseline. CPU time
per keystroke is reported too: on a busy machine the wall time includes
waiting for a core.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from textual.widgets import TextArea

from benchmarks.common import Row, percentile
from benchmarks.pilot import FrameClock, ui
from tui.main_screen import MainScreen

BIG = 1_000_000
SMALL = 1_000
CHUNK = 65_536
OPEN_TARGET_S = 0.3
KEY_TARGET_MS = 16.0


def markdown(size: int) -> str:
    """`size` characters of varied Markdown."""
    parts, length, i = [], 0, 0
    while length < size:
        part = (
            f"## Section {i}\n\nA paragraph with *emphasis*, `code` and a [link](https://example."
            f"org/{i}), long enough to wrap in a terminal of usual width, number {i}.\n\n"
            f"- one item\n- another, **bold**\n\n```\ncode block {i}\n```\n\n"
        )
        parts.append(part)
        length += len(part)
        i += 1
    return "".join(parts)[:size]


async def _measure(opens: int, keys: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mn-note-") as tmp:
        async with ui(Path(tmp) / "h") as (session, app, pilot):
            room = session.new_room("notes")
            ids = {}
            for name, size in (("big", BIG), ("small", SMALL)):
                ids[name] = session.new_note(room, name)
                text = markdown(size)
                for at in range(0, len(text), CHUNK):  # updates small enough to send
                    session.notes_layer.get(ids[name]).append(text[at : at + CHUNK])
                    session.notes_layer.flush(ids[name])
            screen = app.screen
            assert isinstance(screen, MainScreen)
            editor = screen.query_one("#note-editor", TextArea)
            clock = FrameClock(app)
            result: dict[str, Any] = {"open_s": [], "open_small_s": []}
            for _ in range(opens):
                for name in ("big", "small"):
                    wall, _ = await clock.time(
                        lambda n=name: screen.open("note", ids[n]),  # type: ignore[misc]
                        lambda: editor.text.startswith("## Section 0"),
                    )
                    result["open_s" if name == "big" else "open_small_s"].append(wall)
                    await pilot.pause()
            for name in ("small", "big"):
                screen.open("note", ids[name])
                await pilot.pause()
                editor.move_cursor((0, 0))
                walls, cpus = [], []
                for _ in range(keys):
                    before = len(editor.document.get_line(0))
                    wall, cpu = await clock.key(
                        "x", lambda b=before: len(editor.document.get_line(0)) > b
                    )
                    walls.append(wall * 1000)
                    cpus.append(cpu * 1000)
                    await asyncio.sleep(0.03)
                result[f"key_{name}_ms"], result[f"key_{name}_cpu_ms"] = walls, cpus
                await pilot.pause()
            note = session.notes_layer.get(ids["big"]).text
            assert note.startswith("x" * keys + "## Section 0"), "the keystrokes reached the note"
    return result


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    data = asyncio.run(_measure(opens=3 if quick else 7, keys=50 if quick else 200))
    open_s = percentile(data["open_s"], 50)
    key_p99 = percentile(data["key_big_ms"], 99)
    small_p99 = percentile(data["key_small_ms"], 99)
    return [
        Row(
            "3. open a 1 MB Markdown note in the UI (median)",
            open_s,
            "s",
            baseline=percentile(data["open_small_s"], 50),
            baseline_name="a 1 KB note",
            target=f"<= {OPEN_TARGET_S:g} s",
            passed=open_s <= OPEN_TARGET_S,
            notes=f"{len(data['open_s'])} opens, max {max(data['open_s']):.3f} s; to the first "
            "frame showing it, headless",
        ),
        Row(
            "3. keystroke -> screen in a 1 MB note, p99",
            key_p99,
            "ms",
            baseline=small_p99,
            baseline_name="a 1 KB note",
            ratio=key_p99 / small_p99 if small_p99 else None,
            target=f"<= {KEY_TARGET_MS:g} ms",
            passed=key_p99 <= KEY_TARGET_MS,
            notes=f"{len(data['key_big_ms'])} keys: p50 "
            f"{percentile(data['key_big_ms'], 50):.1f} ms (1 KB note "
            f"{percentile(data['key_small_ms'], 50):.1f} ms); CPU per key p50 "
            f"{percentile(data['key_big_cpu_ms'], 50):.1f} ms, p99 "
            f"{percentile(data['key_big_cpu_ms'], 99):.1f} ms",
        ),
    ], data
