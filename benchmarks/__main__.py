"""Run the benchmark suite: `python -m benchmarks [--quick] [--only NAME ...]`.

Prints the table (figure | ours | baseline | ratio | target | pass/fail), writes
benchmarks/results/latest.json and the scaling plot
benchmarks/results/performance-scaling.png (with --plot PATH, there instead).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import (
    abuse,
    files,
    latency,
    memory,
    notes_relay,
    offline,
    relay,
    search,
    tui_history,
    tui_note,
    tui_start,
    yreplay,
)
from benchmarks.common import Row
from benchmarks.plot import plot

SUITE = {
    "relay": relay.run,  # figures 1 and 7 (sizes)
    "latency": latency.run,  # figure 2
    "notes": notes_relay.run,  # figures 3, 4 and 7 (history)
    "memory": memory.run,  # figure 5
    "tui": tui_start.run,  # figure 6
    "offline": offline.run,  # figure 8: back after a week offline (issue 25)
    "abuse": abuse.run,  # issue 17: INVENTORY flood, room-id flood
    "concurrent": yreplay.run,  # issue 25: two editors on two bridges, and y-websocket
    "search": search.run,  # issue 22: full-text search over 1,000,000 messages
    "files": files.run,  # issue 23: attachments over two hops, from three holders, resumed
    "bignote": tui_note.run,  # issue 25: a 1 MB note in the UI
    "history": tui_history.run,  # issue 25: 1,000,000 messages stored, in the UI and CLI
}
RESULTS = Path(__file__).resolve().parent / "results"


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    head = ["figure", "ours", "baseline", "ratio", "target", "pass/fail"]
    body = []
    for r in rows:
        base = (
            f"{_fmt(r.baseline, r.unit)} ({r.baseline_name})"
            if r.baseline is not None
            else (f"- ({r.baseline_name})" if r.baseline_name else "-")
        )
        verdict = {True: "PASS", False: "FAIL", None: "-"}[r.passed]
        body.append(
            [
                r.figure,
                _fmt(r.ours, r.unit),
                base,
                f"{r.ratio:.2f}x" if r.ratio is not None else "-",
                r.target,
                verdict,
            ]
        )
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in body:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    notes = [f"- {r.figure}: {r.notes}" for r in rows if r.notes]
    return "\n".join(lines + (["", *notes] if notes else []))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller runs, under 2 minutes")
    parser.add_argument("--only", nargs="+", choices=list(SUITE), help="run only these parts")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--plot", type=Path, default=RESULTS / "performance-scaling.png")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so every benchmark stops the processes it started
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    rows: list[Row] = []
    data: dict[str, Any] = {}
    failed: list[str] = []
    for name, fn in SUITE.items():
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        try:
            part_rows, part_data = fn(args.quick)
        except Exception as exc:  # one broken part must not lose the others
            traceback.print_exc()
            failed.append(name)
            rows.append(Row(f"{name}: ERROR", None, "", notes=repr(exc)[:300]))
            continue
        rows.extend(part_rows)
        data[name] = part_data
        print(f"[{name}] done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - started
    print(table(rows))
    print(
        f"\n{'quick' if args.quick else 'full'} run: {elapsed:.0f} s on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    result = {
        "quick": args.quick,
        "elapsed_s": elapsed,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "rows": [asdict(r) for r in rows],
        "data": data,
        "failed": failed,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    png = plot(data, args.plot) if ("relay" in data or "notes" in data) else None
    print(f"results: {args.json}" + (f"; plot: {png}" if png else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
