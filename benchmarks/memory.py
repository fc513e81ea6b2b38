"""Figure 5: a relay's RSS after relaying envelopes to many distinct destinations.

source -> relay -> sink as in figure 1, but every envelope goes to one of 1,000
random destinations the relay has no path to: it floods them (to the sink) and
keeps each in its mailbox, as it must for a peer it cannot reach.
"""

from __future__ import annotations

import json
import time
from typing import Any

from benchmarks.common import PY, Cluster, Row, rss_mb

TARGET_MB = 60.0  # issue 25


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    count = 2_000 if quick else 100_000
    cap = 30.0 if quick else 240.0  # seconds: keeps the suite inside its time budget
    dests = 1000
    with Cluster() as c:
        relay = c.node("relay")
        rss_start = rss_mb(relay.proc.pid)
        sink = c.proc(
            [
                PY,
                "-m",
                "benchmarks.linkpeer",
                "sink",
                "--relay",
                relay.address,
                "--count",
                str(count),
                "--idle",
                "20",
            ],
            "sink",
        )
        sink.readline(30)
        time.sleep(0.2)
        t0 = time.monotonic()
        source = c.proc(
            [
                PY,
                "-m",
                "benchmarks.linkpeer",
                "source",
                "--relay",
                relay.address,
                "--count",
                str(count),
                "--size",
                "256",
                "--dests",
                str(dests),
                "--linger",
                "600",
            ],
            "source",
        )
        # the source prints only once it has sent everything, which a slow relay delays
        try:
            got = json.loads(sink.readline(cap))
        except RuntimeError:  # not done within the time cap: measure where it got to
            got = {"received": None}
        elapsed = time.monotonic() - t0
        status = relay.call("status")
        rss = rss_mb(relay.proc.pid)
        source.stop()
    caches = status["caches"]
    at_bound = {k: v for k, v in caches.items() if isinstance(v, dict) and "bound" in v}
    summary = ", ".join(f"{k} {v['size']}/{v['bound']}" for k, v in at_bound.items())
    counters = {
        k: v
        for k, v in status["counters"].items()
        if k.startswith(("dropped", "mailbox", "relayed", "flooded", "received"))
    }
    within = all(v["size"] <= v["bound"] for v in at_bound.values())
    relayed = status["counters"].get("received", 0)
    done = got["received"] is not None and got["received"] >= count
    row = Row(
        f"5. relay RSS after {count:,} envelopes to {dests:,} destinations",
        rss,
        "MB",
        target=f"<= {TARGET_MB:g} MB, caches within bounds",
        passed=rss <= TARGET_MB and within and done,
        notes=(
            ""
            if done
            else f"INCOMPLETE: the relay took in only {relayed:,} of "
            f"{count:,} within the {cap:.0f} s cap; "
        )
        + f"{relayed:,} received by the relay in {elapsed:.1f} s; start RSS "
        f"{rss_start:.1f} MB; caches: {summary}",
    )
    return [row], {
        "rss_mb": rss,
        "rss_start_mb": rss_start,
        "caches": caches,
        "counters": counters,
        "received": got["received"],
        "relay_received": relayed,
        "seconds": elapsed,
        "complete": done,
    }
