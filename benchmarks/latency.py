"""Figure 2: signed ping round trips across a line of 5 nodes (4 hops each way)."""

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
    rtts = [r["rtt_ms"] for r in replies if not r.get("lost")]
    lost = samples - len(rtts)
    p50, p99 = percentile(rtts, 50), percentile(rtts, 99)
    note = f"{len(rtts)} pings, {hops} hops each way" + (f", {lost} lost" if lost else "")
    rows = [
        Row(
            "2. 4-hop ping round trip p50", p50, "ms", target="<= 5 ms", passed=p50 <= 5, notes=note
        ),
        Row("2. 4-hop ping round trip p99", p99, "ms", target="<= 20 ms", passed=p99 <= 20),
    ]
    return rows, {"rtt_ms": rtts}
