"""What a scale run measured: the records the scenario keeps, and the metrics made of them.

Each part of a run (:func:`sim.parts.play_parts`) returns what its own nodes
saw; :func:`measure` merges the parts' observations and turns them into the
JSON-ready metrics of :func:`sim.scenarios.run`.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mesh.wire.envelope import EnvelopeType
from sim.catchup import SharedNote
from sim.graph import Graph


@dataclass
class DirectMessage:
    """A direct message between two nodes and what became of it."""

    sender: int
    recipient: int
    sent: float
    reachable: float
    shortest: int
    number: int = 0
    tries: int = 0
    transmissions: int = 0
    delivered: float | None = None
    acked: float | None = None


@dataclass
class RoomMessage:
    """A message published to a room, and which members got it when."""

    room: int
    author: int
    sent: float
    copies: int = 0
    delivered: dict[int, float] = field(default_factory=dict)


def memory_kib() -> int:
    """This process's proportional set size: pages shared with another part count half."""
    try:
        with open(f"/proc/{os.getpid()}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 4),
        "median": round(statistics.median(ordered), 4),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
        "max": round(ordered[-1], 4),
    }


def note_metrics(
    note: SharedNote,
    seen_by: list[dict[str, Any]],
    away: dict[int, tuple[float, float]],
    t0: float,
) -> dict[str, Any]:
    """When every member held every edit, counted from the later of last return and last edit.

    `seen_by` holds each part's :meth:`SharedNote.observed` for the members it played.
    """
    members: dict[int, tuple[str, bytes, float | None]] = {}
    for part in seen_by:
        members.update(part["members"])
    returns = [away[m][1] for m in note.members if m in away]
    last_return = max(returns, default=0.0)
    last_edit = max(part["last_edit"] for part in seen_by) - t0
    full = [when for _, _, when in members.values() if when is not None]
    converged = max(full) - t0 if len(full) == len(note.members) else None
    after = None if converged is None else converged - max(last_return, last_edit)
    texts = {text for text, _, _ in members.values()}
    return {
        "members": len(note.members),
        "members_away": len(returns),
        "edits": sum(part["edits"] for part in seen_by),
        "last_return_s": round(last_return, 3),
        "last_edit_s": round(last_edit, 3),
        "converged": converged is not None,
        "converged_at_s": None if converged is None else round(converged, 3),
        "converged_after_s": None if after is None else round(max(0.0, after), 3),
        "identical": len(texts) == 1 and len({state for _, state, _ in members.values()}) == 1,
        "text_bytes": len(members[note.members[0]][0].encode()),
    }


def measure(
    scenario: dict[str, Any],
    graph: Graph,
    latency: list[float],
    directs: list[DirectMessage],
    members: list[set[int]],
    online_at: Callable[[int, float], bool],
    note: SharedNote | None,
    away: dict[int, tuple[float, float]],
    t0: float,
    seen_by: list[dict[str, Any]],
    cost: dict[str, Any],
) -> dict[str, Any]:
    """Merge the parts' observations (`seen_by`, one per part) into the run's metrics.

    `scenario` is the run's :class:`~sim.scenarios.Scenario` as a dict.

    `directs` are the direct messages as the scenario planned them (each part's
    tries and deliveries are added up here); `cost` goes in as it is.
    """
    # -- merge the parts' observations ---------------------------------------
    data_ids: dict[bytes, int] = {}
    for o in seen_by:
        data_ids.update(o["data_ids"])
    for i, item in enumerate(directs):
        seen_as = [o["directs"][i] for o in seen_by]
        item.tries = sum(t for t, _, _ in seen_as)
        item.delivered = min((d for _, d, _ in seen_as if d is not None), default=None)
        item.acked = min((a for _, _, a in seen_as if a is not None), default=None)
        item.transmissions = 0
    for o in seen_by:
        for mid, count in o["sent_data"].items():
            number = data_ids.get(mid)
            if number is not None:
                directs[number].transmissions += count
    published: dict[bytes, RoomMessage] = {}
    for o in seen_by:
        published.update(o["room_msgs"])
    for mid, msg in published.items():
        msg.copies = sum(o["arrivals"].get(mid, 0) for o in seen_by)
        for o in seen_by:
            for member, when in o["firsts"].get(mid, {}).items():
                msg.delivered[member] = min(when, msg.delivered.get(member, when))

    # -- metrics ---------------------------------------------------------------
    mean_latency = statistics.fmean(latency)
    delivered = [d for d in directs if d.delivered is not None]
    delays = [max(0.0, d.delivered - d.reachable) for d in delivered]  # type: ignore[operator]
    ratios = [d.transmissions / d.shortest for d in delivered if d.shortest > 0]
    room_delivery = []
    room_delivery_stayed = []
    copies = []
    for msg in published.values():
        group = members[msg.room] - {msg.author}
        got = sum(1 for m in group if m in msg.delivered)
        room_delivery.append(got / len(group))
        # members online from publication until well after it: churn cannot excuse a miss
        stayed = [m for m in group if all(online_at(m, msg.sent + s) for s in (0, 5, 10, 15))]
        if stayed:
            room_delivery_stayed.append(sum(1 for m in stayed if m in msg.delivered) / len(stayed))
        receivers = len(msg.delivered) - 1
        if receivers:
            copies.append(msg.copies / receivers)
    routes = [x for o in seen_by for x in o["routes"]]
    counters: dict[str, int] = {}
    for o in seen_by:
        for name, value in o["counters"].items():
            counters[name] = counters.get(name, 0) + value
    seen = [x for o in seen_by for x in o["seen"]]
    sent_by_type: dict[int, int] = {}
    for o in seen_by:
        for kind, count in o["sent_by_type"].items():
            sent_by_type[kind] = sent_by_type.get(kind, 0) + count
    inventories = [o["catch_up"] for o in seen_by if o["catch_up"] is not None]
    out: dict[str, Any] = {
        "scenario": {k: v for k, v in scenario.items() if k != "gossip_config"},
        "mode": "gossip" if scenario["gossip"] else "flood",
        "graph": {
            "nodes": graph.n,
            "links": len(graph.edges),
            "mean_degree": round(2 * len(graph.edges) / graph.n, 2),
            "max_degree": max(len(a) for a in graph.adjacency),
            "mean_link_latency_ms": round(1000 * mean_latency, 2),
        },
        "direct": {
            "sent": len(directs),
            "delivered": len(delivered),
            "delivery_ratio": round(len(delivered) / len(directs), 4) if directs else None,
            "acked": sum(1 for d in directs if d.acked is not None),
            "delay_ms": summary([1000 * d for d in delays]),
            "delay_in_link_latencies": summary([d / mean_latency for d in delays]),
            "shortest_path_hops": summary([float(d.shortest) for d in directs]),
            "tries": summary([float(d.tries) for d in directs]),
            "flooded_share": round(sum(1 for d in directs if d.tries >= 2) / len(directs), 4)
            if directs
            else None,
            "transmissions_per_shortest_path": summary(ratios),
            "transmissions_over_shortest_total": round(
                sum(d.transmissions for d in delivered)
                / max(1, sum(d.shortest for d in delivered)),
                3,
            ),
        },
        "room": {
            "messages": len(published),
            "room_size": scenario["room_size"],
            "delivery_ratio": summary(room_delivery),
            "delivery_ratio_members_online_throughout": summary(room_delivery_stayed),
            "copies_per_member": summary(copies),
        },
        "note": note_metrics(note, [o["note"] for o in seen_by], away, t0)
        if note is not None
        else None,
        "catch_up": {
            "inventories": sum(c[0] for c in inventories),
            "handed_on": sum(c[1] for c in inventories),
            "room_logs": sum(c[2] for c in inventories),
        }
        if inventories
        else None,
        "tables": {
            "routes_per_node": summary([float(x) for x in routes]),
            "seen_ids_per_node": summary([float(x) for x in seen]),
        },
        "traffic": {
            "transmissions": sum(sent_by_type.values()),
            "by_type": {
                (EnvelopeType(k).name if k in EnvelopeType._value2member_map_ else str(k)): v
                for k, v in sorted(sent_by_type.items())
            },
            "lost_in_flight_on_link_down": sum(o["cut"] for o in seen_by),
            "lost_to_link_loss": sum(o["lost"] for o in seen_by),
            "router_counters": dict(sorted(counters.items())),
            "events": sum(o["events"] for o in seen_by),
        },
        "cost": cost,
    }
    if scenario["gossip"]:
        mesh_sizes = [x for o in seen_by for x in o["mesh_sizes"]]
        out["gossip"] = {
            "mesh_peers_per_topic": summary([float(x) for x in mesh_sizes]),
            "topics_per_node": summary([float(x) for o in seen_by for x in o["topics"]]),
            "config": scenario["gossip_config"],
        }
    return out
