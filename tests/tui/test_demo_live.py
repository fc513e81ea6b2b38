"""The demo's third peer edits the welcome note through the first minute (issue 20, item 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from tui.demo import Demo
from tui.session import LocalSession


class FakeNote:
    def __init__(self, clock: list[float], edits: list[tuple[float, str]]) -> None:
        self.clock, self.edits = clock, edits

    def append(self, text: str) -> None:
        self.edits.append((self.clock[0], text))


class FakeNotes:
    def __init__(self, note: FakeNote) -> None:
        self.note = note
        self.flushed = 0

    def get(self, note_id: str) -> FakeNote:
        return self.note

    def flush(self, note_id: str) -> None:
        self.flushed += 1


async def test_the_third_peer_edits_live_through_the_first_minute(tmp_path: Path) -> None:
    clock = [0.0]
    edits: list[tuple[float, str]] = []

    async def sleep(seconds: float) -> None:  # virtual time: the schedule, not the waiting
        clock[0] += seconds

    notes = FakeNotes(FakeNote(clock, edits))
    third: Any = type("Third", (), {"notes_layer": notes})()
    await Demo(tmp_path, sleep=sleep).edit_live(cast(LocalSession, third), "note")
    times = [at for at, _ in edits]
    assert times[-1] >= 60, f"the last live edit comes at {times[-1]} s"
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert max(gaps) <= 10, "a user opening the note soon sees an edit arrive"
    assert all(text.startswith("\n- third peer:") for _, text in edits)
    assert notes.flushed == len(edits)
