"""What docs/scale.md concludes from the scale runs: the findings, and the estimates for
larger meshes (arithmetic on the measured figures, not a measurement)."""

from __future__ import annotations

import math
from typing import Any


def yes_no(ok: bool) -> str:
    return "yes" if ok else "no"


def findings(results: list[dict[str, Any]]) -> str:
    """Plain-language reading of the largest churned runs; every figure comes from `results`."""
    churned = [r for r in results if r["scenario"]["churn"]]
    if not churned:
        return ""
    flooded = [r["graph"]["nodes"] for r in churned if r["mode"] == "flood"]
    if not flooded:
        return ""
    n = max(flooded)  # the largest size measured in every mode
    runs = {r["mode"]: r for r in churned if r["graph"]["nodes"] == n}
    f = runs["flood"]
    d = f["direct"]
    lat = f["graph"]["mean_link_latency_ms"]
    by = f["traffic"]["by_type"]
    rc = f["traffic"].get("router_counters", {})
    ann = by.get("ANNOUNCE", 0)
    rejoins = max(1, round(f["scenario"]["churn"] * n))
    out = [
        f"At {n:,} nodes with 20% churn (flood mode):",
        f"- Direct messages: {d['delivered']}/{d['sent']} delivered; median delay "
        f"{d['delay_ms']['median']:.0f} ms ({d['delay_in_link_latencies']['median']:.1f} mean "
        f"link latencies, against a 10-hop budget of {10 * lat:.0f} ms); p95 "
        f"{d['delay_ms']['p95']:.0f} ms.",
        f"- Transmissions per delivered message over the shortest path: median "
        f"{d['transmissions_per_shortest_path']['median']:.2f}, mean "
        f"{d['transmissions_per_shortest_path']['mean']:.2f}, max "
        f"{d['transmissions_per_shortest_path']['max']:.1f}. A message whose path was "
        "withdrawn is parked where it stands instead of flooding the mesh "
        f"({rc.get('parked', 0):,} parked, {rc.get('unparked', 0):,} sent on along a new path, "
        f"{rc.get('dropped_park_expired', 0):,} expired); {d['flooded_share']:.0%} of the "
        "messages reached a third, FLOOD-flagged try; with no path known the sender parks "
        "that one too (a duplicate of the parked first try) and floods it only if no path "
        f"came before the parked copy's time ran out ({rc.get('park_expired_flooded', 0):,} "
        "such last-resort floods).",
        f"- Churn cost: {ann:,} of {f['traffic']['transmissions']:,} transmissions are "
        f"announces (about {ann / rejoins:,.0f} per node that leaves and returns) and "
        f"{by.get('WITHDRAW', 0):,} are withdrawals; they set the run time "
        f"({f['cost']['cpu_seconds']:.0f} CPU s). When a node leaves, a path through it "
        "moves to its equal-cost fallback where there is one "
        f"({rc.get('routes_switched', 0):,} paths switched, no one told); the others are "
        "withdrawn (the node itself everywhere; "
        f"{rc.get('withdrawals_spared', 0):,} destinations left out of notices to neighbours "
        "that had withdrawn them first) and repaired: "
        f"{rc.get('reshared', 0):,} re-shared announces and "
        f"{rc.get('routes_relearned', 0):,} paths relearned (each relearned path is passed to "
        "every other neighbour once); a returning node gets its neighbours' tables.",
    ]
    note = f.get("note")
    if note:
        out.append(
            f"- Shared note: {note['members']} members ({note['members_away']} of them away "
            f"for a while), {note['edits']} edits; every member held every edit "
            f"{note['converged_after_s']} s after the later of the last return "
            f"({note['last_return_s']:.1f} s) and the last edit ({note['last_edit_s']:.1f} s); "
            f"texts and full document encodings byte-identical: {yes_no(note['identical'])}. "
            "Members who were away catch up from their neighbours' room logs on link-up "
            f"({f['catch_up']['handed_on']:,} envelopes handed on in the run)."
        )
    for mode, r in sorted(runs.items()):
        if mode == "flood":
            continue
        room = r["room"]
        rb = r["traffic"]["by_type"]
        out.append(
            f"- Rooms, {mode}: {room['copies_per_member']['mean']:.2f} copies per member "
            f"(flood: {f['room']['copies_per_member']['mean']:.2f}), delivery to members online "
            f"throughout {room['delivery_ratio_members_online_throughout']['mean']:.1%}, to "
            f"all members {room['delivery_ratio']['mean']:.1%}; {rb.get('NOTE', 0):,} room "
            f"transmissions (flood: {by.get('NOTE', 0):,}) plus {rb.get('IHAVE', 0):,} IHAVE, "
            f"{rb.get('IWANT', 0):,} IWANT, {rb.get('GRAFT', 0):,} GRAFT and "
            f"{rb.get('PRUNE', 0):,} PRUNE."
        )
    for mode, r in sorted(runs.items()):
        last = r["traffic"].get("router_counters", {}).get("park_expired_flooded", 0)
        if last:
            rd = r["direct"]
            out.append(
                f"- Direct messages, {mode}: {rd['delivered']}/{rd['sent']} delivered; {last} "
                "reached its recipient only by its sender's last-resort flood (no path came "
                "back within the 30 s a parked envelope waits), which alone sets the mean "
                f"transmissions per path ({rd['transmissions_per_shortest_path']['mean']:.1f}; "
                f"median {rd['transmissions_per_shortest_path']['median']:.2f})."
            )
    tree = runs.get("gossip tree")
    if tree is not None:
        calm = next(
            (
                r
                for r in results
                if r["mode"] == "gossip tree"
                and r["graph"]["nodes"] == n
                and not r["scenario"]["churn"]
            ),
            None,
        )
        calm_text = (
            f" ({calm['room']['copies_per_member']['mean']:.2f} without churn)" if calm else ""
        )
        out.append(
            "- With mean degree 6, a D=6 topic mesh holds nearly every neighbour, so it saves "
            "little over flooding. The author's tree sends each copy only to neighbours farther "
            "from the author, so a member gets about one copy per neighbour one hop nearer the "
            f"author: {tree['room']['copies_per_member']['mean']:.2f} copies per member"
            f"{calm_text}; churn adds the copies a returning node gets from every neighbour "
            "until its own announces mark which of them are nearer. Copies take shortest "
            "paths, so the 8-hop limit strands no one. (An earlier D=3 topic mesh kept copies "
            "at 2.62 but reached 95.4% of the members online throughout at 1,000 nodes: paths "
            "through a degree-3 mesh outran the hop limit. The tree replaced it.)"
        )
    for r in sorted(churned, key=lambda r: (r["graph"]["nodes"], r["mode"])):
        if r["graph"]["nodes"] <= n:
            continue
        rd, room, note = r["direct"], r["room"], r.get("note") or {}
        out.append(
            f"- {r['graph']['nodes']:,} nodes, 20% churn, {r['mode']} (not run in every mode): "
            f"{rd['delivered']}/{rd['sent']} direct messages delivered, median delay "
            f"{rd['delay_ms']['median']:.0f} ms; {room['copies_per_member']['mean']:.2f} room "
            "copies per member, delivery to members online throughout "
            f"{room['delivery_ratio_members_online_throughout']['mean']:.2%}; note converged "
            f"{note.get('converged_after_s')} s after the last return, byte-identical: "
            f"{yes_no(bool(note.get('identical')))}; "
            f"{r['traffic']['transmissions']:,} transmissions, "
            f"{r['cost']['wall_seconds'] / 60:.0f} min wall over {r['cost'].get('parts', 1)} "
            f"processes, {r['cost']['rss_kib_per_node'] / 1024:.1f} MiB per node."
        )
    return "\n".join(out)


def estimate(results: list[dict[str, Any]]) -> str:
    """Arithmetic on measured constants; every input figure comes from `results`."""
    flood = [r for r in results if r["mode"] == "flood" and r["scenario"]["churn"] == 0.0]
    # announce traffic does not depend on how rooms travel: any mode's churned run will do
    churned = [r for r in results if r["scenario"]["churn"] == 0.2]
    if not flood:
        return ""
    big = max(flood, key=lambda r: r["graph"]["nodes"])
    n0 = big["graph"]["nodes"]
    k = big["graph"]["mean_degree"]
    hops0 = big["direct"]["shortest_path_hops"]["mean"]
    rss0 = big["cost"]["rss_kib_per_node"]
    lat = big["graph"]["mean_link_latency_ms"]
    lines = [
        f"| quantity | measured at {n0:,} nodes | estimate at 100,000 | estimate at 1,000,000 |",
        "|---|---|---|---|",
    ]

    def path(n: int) -> float:
        # random graphs: mean path grows with log(n) / log(k - 1); anchored on the measured mean
        return float(hops0 + math.log(n / n0) / math.log(k - 1))

    lines.append(
        f"| mean shortest path (hops) | {hops0:.2f} | {path(100_000):.1f} | {path(1_000_000):.1f} |"
    )
    lines.append(
        f"| median direct delay on a known path (ms) | {big['direct']['delay_ms']['median']:.0f} "
        f"| {path(100_000) * lat:.0f} | {path(1_000_000) * lat:.0f} |"
    )
    lines.append(
        "| routes per node (bound: 10,000 by default) "
        f"| {big['tables']['routes_per_node']['mean']:.0f} "
        "| 10,000 (full: 90% of peers have no path; their traffic floods) "
        "| 10,000 (99% without a path) |"
    )
    lines.append(
        f"| signature checks per node per announce interval | {n0:,} "
        "| 100,000 (~4 s of one core at 41 µs each) "
        "| 1,000,000 (~41 s of one core: longer than the 30 s interval) |"
    )
    lines.append(
        f"| RSS per node in the simulator (KiB; grows with routes) | {rss0:.0f} "
        f"| {rss0 * 10_000 / max(1.0, big['tables']['routes_per_node']['mean']):.0f} "
        "(routes at their bound) "
        f"| same as 100,000 |"
    )
    if churned:
        c = max(churned, key=lambda r: r["graph"]["nodes"])
        ann = c["traffic"]["by_type"].get("ANNOUNCE", 0)
        rejoins = round(c["scenario"]["churn"] * c["graph"]["nodes"])
        per = ann / max(1, rejoins)
        at = "" if c["graph"]["nodes"] == n0 else f" (measured at {c['graph']['nodes']:,} nodes)"
        lines.append(
            f"| announce transmissions per returning node{at} | {per:,.0f} "
            f"| {per * 100_000 / c['graph']['nodes']:,.0f} "
            f"| {per * 1_000_000 / c['graph']['nodes']:,.0f} |"
        )
    return "\n".join(lines)
