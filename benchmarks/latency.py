"""Figure 2: signed ping round trips across a line of 5 nodes (4 hops each way), and direct
messages across the same line: sealed on the pair's ratchet session, opened, stored and
receipted (the ping is the baseline: the ratio says what the chat layer adds)."""

from __future__ import annotations

from typing import Any

from benchmarks.common import Cluster, Row, percentile


def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    samples = 50 if quick else 200
    with Cluster() as c:
        nodes = c.line(5)
        hops = nodes[0].wait_route(nodes[4].peer_id)
        nodes[0].call("ping", {"peer": nodes[4].peer_id, "count": 10, "interval": 0.01})  # warm-up
        replies = nodes[0].call(
            "ping", {"peer": nodes[4].peer_id, "count": samples, "interval": 0.01}, timeout=600
        )
        dm = {"peer": nodes[4].peer_id, "count": 5}
        nodes[0].call("bench.dm_round_trips", dm, timeout=600)  # warm-up: the session starts
        dms = nodes[0].call("bench.dm_round_trips", {**dm, "count": samples // 2}, timeout=600)
    dm_p50 = percentile(dms["rtt_ms"], 50)
    rtts = [r["rtt_ms"] for r in replies if not r.get("lost")]
    lost = samples - len(rtts)
    p50, p99 = percentile(rtts, 50), percentile(rtts, 99)
    note = f"{len(rtts)} pings, {hops} hops each way" + (f", {lost} lost" if lost else "")
    rows = [
        Row(
            "2. 4-hop ping round trip p50", p50, "ms", target="<= 5 ms", passed=p50 <= 5, notes=note
        ),
        Row("2. 4-hop ping round trip p99", p99, "ms", target="<= 20 ms", passed=p99 <= 20),
        Row(
            "2. 4-hop direct message round trip p50 (sent to receipted)",
            dm_p50,
            "ms",
            notes=f"{len(dms['rtt_ms'])} messages; {dm_p50 / p50:.2f}x the ping p50 of this run",
        ),
    ]
    return rows, {"rtt_ms": rtts, "dm_rtt_ms": dms["rtt_ms"]}
