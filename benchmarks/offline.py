"""Figure 8: coming back after a week — a member offline while its room moved on.

A and D are members of a room with a note; D dials A. D stops; meanwhile A
sends 20,000 messages to the room and types the first 50,000 edits of the
automerge-paper trace into the note (quick: 2,000 and 5,000). D starts again
from its home and dials A: the clock starts when that first link is up and
stops when D shows every message and its note holds A's text. D catches up the
way any member coming back does: an INVENTORY on link-up, answered from A's
room log (the newest signed snapshot of the note, the NOTE envelopes after it,
and the CHAT envelopes D lacks).

D counts a message shown when the chat tells its front ends of it (its
"message" event, sent once the burst that stored it commits), and checks the
stored count at the end. The row also gives the CPU time both processes spent
meanwhile (D's includes its signature-checking threads) and the load average:
on a shared machine the wall time follows the share of the cores they get, so
the row also says how long each one's event-loop thread was ready to run but
waiting for a core (the run-queue delay the kernel counts, /proc/PID/schedstat).
With BENCH_PROFILE=PATH, D's catch-up is profiled to PATH.back and A's side of
it to PATH.sender.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Cluster, Row, setup_room

TARGET_S = 3.0


def run_queue_s(pid: int) -> float:
    """Seconds the main thread of `pid` has spent ready to run but not running."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    messages, edits = (2_000, 5_000) if quick else (20_000, 50_000)
    with Cluster() as c:
        a = c.node("a")
        d = c.node("d", [a.address])
        room = setup_room(a, [d], "away")
        note = a.call("note.new", {"room": room, "title": "week"})["note_id"]
        d.wait_note(note)
        d.stop()
        c.nodes.remove(d)
        t0 = time.monotonic()
        a.call("bench.say_many", {"room": room, "count": messages}, timeout=900)
        typed = a.call("bench.type_trace", {"note": note, "edits": edits}, timeout=900)
        a.wait_room_log_quiet(120)
        away_s = time.monotonic() - t0
        d = c.node("d")  # the same home: the same identity, rooms and history
        profile = os.environ.get("BENCH_PROFILE")  # the author's side too, at PATH.sender
        if profile:
            a.call("bench.profile", {})
        cpu = a.call("bench.cpu", {})["cpu_s"]
        load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
        queued = (run_queue_s(d.proc.pid), run_queue_s(a.proc.pid))
        back = d.call(
            "bench.come_back",
            {
                "peer": a.address,
                "room": room,
                "messages": messages,
                "note": note,
                "length": typed["length"],
                "sha": typed["sha"],
                "timeout": 300,
            },
            timeout=400,
        )
        author_cpu_s = a.call("bench.cpu", {})["cpu_s"] - cpu
        loads = (load, os.getloadavg()[0])
        waited = (run_queue_s(d.proc.pid) - queued[0], run_queue_s(a.proc.pid) - queued[1])
        # every node's counters (drops by reason, retries, receipts) go into the JSON
        counters = {n.name: n.call("status", {})["counters"] for n in (a, d)}
        if profile:
            a.call("bench.profile", {"path": f"{profile}.sender"})
    done = back["messages_s"] is not None and back["note_s"] is not None
    total = max(back["messages_s"] or 0.0, back["note_s"] or 0.0) if done else None

    def when(seconds: float | None) -> str:
        return f"after {seconds:.2f} s" if seconds is not None else "by then"

    row = Row(
        f"8. back after a week offline: {messages:,} messages + {edits:,} note edits",
        total,
        "s",
        target=f"<= {TARGET_S:g} s from the first link",
        passed=done and total is not None and total <= TARGET_S,
        notes=("" if done else f"INCOMPLETE after {back['timeout_s']:.0f} s: ")
        + f"{back['shown'] - back['before']:,} of {messages:,} messages shown "
        f"{when(back['messages_s'])}, the note's text "
        f"{when(back['note_s']) if back['note_s'] is not None else 'not'}; "
        f"the room moved on for {away_s:.0f} s; CPU meanwhile: the member "
        f"{back['cpu_s']:.1f} s, the author {author_cpu_s:.1f} s; waiting for a core (event "
        f"loops): the member {waited[0]:.1f} s, the author {waited[1]:.1f} s; load average "
        f"{loads[0]:.1f} then {loads[1]:.1f}"
        + (f"; refused: {back['refused']}" if back.get("refused") else ""),
    )
    data = {
        "messages": messages,
        "edits": edits,
        "away_s": away_s,
        "author_cpu_s": author_cpu_s,
        "load_average": loads,
        "run_queue_s": {"member": waited[0], "author": waited[1]},
        "counters": counters,
    }
    return [row], {**data, **back}
