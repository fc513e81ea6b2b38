"""docs/scale.md's section on the `zones` mode: announces within a radius, other paths asked for.

Written from the scale runs' results (benchmarks/scale.py, mode ``zones``): the
cost of a leave or a return next to the flat modes at the same sizes, the
targets of the route-repair work, and estimates for larger meshes (a fit to
the measured sizes, labelled as such).
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.scale_findings import yes_no

MiB = 1024
TITLE = "Paths within a radius, the rest asked for (`zones`): a leave or a return stays local"
HEAD = (
    "| nodes | mode | announce + withdraw / event | TABLE / event (entries) | PATH / event "
    "| direct | tx / shortest (mean) | DM delay median ms | room (online members) "
    "| room copies / member | note | routes / node | wall s | RSS KiB / node |\n"
    + "|---" * 14
    + "|"
)


def churn_events(r: dict[str, Any]) -> int:
    """Leaves and returns in a run: each node that leaves comes back."""
    return 2 * round(r["scenario"]["churn"] * r["graph"]["nodes"])


def per_event(r: dict[str, Any], *kinds: str) -> float:
    by = r["traffic"]["by_type"]
    return sum(by.get(k, 0) for k in kinds) / max(1, churn_events(r))


def _row(r: dict[str, Any]) -> str:
    d, room, note = r["direct"], r["room"], r.get("note") or {}
    entries = r["traffic"].get("router_counters", {}).get("table_entries", 0)
    return (
        f"| {r['graph']['nodes']:,} | {r['mode']} "
        f"| {per_event(r, 'ANNOUNCE', 'WITHDRAW'):,.1f} "
        f"| {per_event(r, 'TABLE'):,.1f} ({entries / max(1, churn_events(r)):,.0f}) "
        f"| {per_event(r, 'PATH'):,.0f} "
        f"| {d['delivery_ratio']:.1%} | {d['transmissions_per_shortest_path']['mean']:.2f} "
        f"| {d['delay_ms']['median']:.0f} "
        f"| {room['delivery_ratio_members_online_throughout']['mean']:.2%} "
        f"| {room['copies_per_member']['mean']:.2f} "
        f"| {yes_no(bool(note.get('converged') and note.get('identical')))} "
        f"| {r['tables']['routes_per_node']['mean']:.0f} "
        f"| {r['cost']['wall_seconds']:,.0f} | {r['cost']['rss_kib_per_node']:,.0f} |"
    )


def _targets(zones: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | met |", "|---|---|---|"]
    at = next((r for r in zones if r["graph"]["nodes"] == 5000), None)
    if at is not None:
        frames = per_event(at, "ANNOUNCE", "WITHDRAW")
        with_tables = per_event(at, "ANNOUNCE", "WITHDRAW", "TABLE")
        wall, rss = at["cost"]["wall_seconds"], at["cost"]["rss_kib_per_node"]
        lines += [
            f"| 5,000 nodes: frames per churn event <= 50 | {frames:.1f} announce and "
            f"withdraw frames ({with_tables:.1f} with the TABLE frames) "
            f"| {yes_no(frames <= 50)} ({yes_no(with_tables <= 50)} with them) |",
            f"| 5,000 nodes: the scenario in <= 5 min of wall time | {wall:.0f} s over "
            f"{at['cost'].get('parts', 1)} processes | {yes_no(wall <= 300)} |",
            f"| 5,000 nodes: <= 1 MiB per simulated node | {rss / MiB:.2f} MiB "
            f"| {yes_no(rss <= MiB)} |",
        ]
    sizes = ", ".join(f"{r['graph']['nodes']:,}" for r in zones)

    def every(name: str, values: list[float], fmt: str, ok: bool) -> str:
        measured = ", ".join(fmt.format(v) for v in values)
        return f"| every size ({sizes}): {name} | {measured} | {yes_no(ok)} |"

    direct = [r["direct"]["delivery_ratio"] for r in zones]
    room = [r["room"]["delivery_ratio_members_online_throughout"]["mean"] for r in zones]
    tx = [r["direct"]["transmissions_per_shortest_path"]["mean"] for r in zones]
    copies = [r["room"]["copies_per_member"]["mean"] for r in zones]
    notes = [bool((r.get("note") or {}).get("converged") and r["note"]["identical"]) for r in zones]
    lines += [
        every("direct delivery 100%", direct, "{:.1%}", min(direct) == 1.0),
        every("room delivery to members online throughout 100%", room, "{:.2%}", min(room) == 1.0),
        every("DM transmissions <= 1.5x the shortest path (mean)", tx, "{:.2f}", max(tx) <= 1.5),
        every("room copies per member <= 2.5", copies, "{:.2f}", max(copies) <= 2.5),
        f"| every size: the 20-member note converges byte-identical "
        f"| {', '.join(yes_no(n) for n in notes)} | {yes_no(all(notes))} |",
    ]
    return "\n".join(lines)


def _fit(zones: list[dict[str, Any]], value: Any) -> tuple[float, float] | None:
    """Least-squares line through (log n, log value): (exponent, constant), or None."""
    points = [
        (math.log(r["graph"]["nodes"]), math.log(v)) for r in zones if (v := value(r)) and v > 0
    ]
    if len(points) < 3:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if not sxx:
        return None
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return slope, my - slope * mx


def _estimates(zones: list[dict[str, Any]]) -> str:
    quantities = [
        (
            "announce and withdraw frames per churn event",
            lambda r: per_event(r, "ANNOUNCE", "WITHDRAW"),
        ),
        (
            "TABLE entries per churn event",
            lambda r: (
                r["traffic"].get("router_counters", {}).get("table_entries", 0)
                / max(1, churn_events(r))
            ),
        ),
        (
            "PATH frames per direct message (requests and answers)",
            lambda r: r["traffic"]["by_type"].get("PATH", 0) / max(1, r["direct"]["sent"]),
        ),
        ("routes per node", lambda r: r["tables"]["routes_per_node"]["mean"]),
        ("RSS KiB per simulated node", lambda r: r["cost"]["rss_kib_per_node"]),
    ]
    lines = [
        "| quantity | fit (n^k) | estimate at 100,000 | estimate at 1,000,000 |",
        "|---|---|---|---|",
    ]
    for name, value in quantities:
        fit = _fit(zones, value)
        if fit is None:
            continue
        k, c = fit
        lines.append(
            f"| {name} | n^{k:.2f} | {math.exp(c) * 1e5**k:,.0f} | {math.exp(c) * 1e6**k:,.0f} |"
        )
    return "\n".join(lines) if len(lines) > 2 else "(Fewer than three sizes measured: no fit.)"


def _findings(zones: list[dict[str, Any]], flat: list[dict[str, Any]]) -> str:
    """What the runs say about asking: its frames and its delay; every figure from them."""
    out = []
    for r in zones:
        c = r["traffic"].get("router_counters", {})
        sent, rings = c.get("path_requests_sent", 0), c.get("path_rings_sent", 0)
        out.append(
            f"- {r['graph']['nodes']:,} nodes: {sent:,} requests ({rings:,} of them rings, "
            f"{sent - rings:,} across the mesh) for {r['direct']['sent']} direct messages, their "
            f"retries and their receipts; {c.get('paths_found', 0):,} answers reached their "
            f"askers; {r['traffic']['by_type'].get('PATH', 0) / max(1, r['direct']['sent']):,.0f} "
            f"PATH frames per direct message; {c.get('paths_dropped_quietly', 0):,} paths "
            "dropped without a word."
        )
    both = {r["graph"]["nodes"]: r for r in flat}
    pairs = [(r, both[r["graph"]["nodes"]]) for r in zones if r["graph"]["nodes"] in both]
    if pairs:
        delays = "; ".join(
            f"{z['graph']['nodes']:,} nodes: {z['direct']['delay_ms']['median']:.0f} ms against "
            f"{f['direct']['delay_ms']['median']:.0f} ms"
            for z, f in pairs
        )
        out.append(
            "- Asking costs time before the first message to a far peer: median direct delay "
            f"with zones against announces across the mesh, {delays}. A ring waits 0.2 s per "
            "link of its hop limit (0.6 s, then 1 s) before the next is sent, and most "
            "destinations of a large mesh lie beyond the first ring's reach (5 links)."
        )
    return "\n".join(out)


def zones_section(results: list[dict[str, Any]]) -> str:
    """The section, or nothing when no churned zones run is in `results`."""
    zones = sorted(
        (r for r in results if r["mode"] == "zones" and r["scenario"]["churn"]),
        key=lambda r: r["graph"]["nodes"],
    )
    if not zones:
        return ""
    sizes = {r["graph"]["nodes"] for r in zones}
    flat = sorted(
        (
            r
            for r in results
            if r["mode"] == "gossip tree"
            and r["scenario"]["churn"]
            and r["graph"]["nodes"] in sizes
        ),
        key=lambda r: r["graph"]["nodes"],
    )
    rows = sorted(zones + flat, key=lambda r: (r["graph"]["nodes"], r["mode"]))
    estimates = _estimates(zones)
    return f"""## {TITLE}

The `zones` mode is the gossip tree with `RouterConfig.announce_radius` 2
(`mesh/routing/discovery.py`; the wire format is `PATH` in docs/protocol.md): a node's
announces cross 2 links, so it keeps paths to the nodes around it; a room member's cross the
mesh, because its rooms' trees need every relay's distance to it; any other path is asked for
when traffic needs it, in rings of hop limit 3 and 5 answered by the destination or a node
near it, then across the mesh. A lost path is told to neighbours only if one of them can have
learned it from us (shorter than the radius, from the destination's announce); the others go
quietly, and traffic that still comes for them waits where the path broke while that node asks.
So a leave or a return costs what its announces and withdrawals reach, the nodes within two
links, and the cost of finding far paths moves to the traffic that needs them (the PATH
column). The warm start seeds each node's paths to the nodes within 2 links and to the room
members, what a converged round of such announces leaves behind.

Per churn event (a leave or a return), 20% churn, against announces that cross the whole
mesh (`gossip tree`) where both ran (announce and withdraw frames, as in the section above;
TABLE frames apart, with the announces they carry in brackets; PATH: requests and answers,
counted per churn event to compare, though traffic, not churn, makes them):

{HEAD}
{chr(10).join(_row(r) for r in rows)}

Measured before, with announces across the mesh, at 5,000 nodes (gossip tree, 20% churn; the
table of the earlier page, not run again: 55 minutes): 42,143 announce and withdraw frames per
churn event, 3,299 s of wall time, 3.8 MiB per node, room delivery to members online
throughout 99.89%.

{_findings(zones, flat)}

### Targets (the route-repair work's, in the simulator with the real routing code)

{_targets(zones)}

**Estimate, not measured.** A least-squares line through the logarithms of the measured
`zones` sizes above, carried on to 100,000 and 1,000,000 nodes (the method and nothing more):

{estimates}

What the fit leaves out: paths grow towards the 8-link hop limit (the estimate at the end of
this page: a mean of 8.3 links at 1,000,000 nodes), so there a request across the mesh
reaches only part of it; and each room member's announce crosses the mesh, once per announce
interval (30 s) in a live mesh, which the runs here (shorter than one interval) do not show:
with m members that is m floods of the mesh per interval, a load that grows with m x n.
"""
