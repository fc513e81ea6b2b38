"""The 300-node scenario with 20% churn that the route repair tests measure, and its counts."""

from __future__ import annotations

from typing import Any

from mesh.routing.gossip import GossipConfig
from sim.scenarios import Scenario, run

NODES = 300
EVENTS = 2 * round(0.2 * NODES)  # churn events: each node that leaves comes back


def churn_run(**routing: Any) -> dict[str, Any]:
    """Run it (gossip tree rooms, seed 1) with these Scenario routing settings."""
    return run(
        Scenario(
            nodes=NODES, churn=0.2, gossip=True, gossip_config=GossipConfig(tree=True), **routing
        )
    )


def frames_per_churn_event(result: dict[str, Any], *kinds: str) -> float:
    """Frames of `kinds` (default: ANNOUNCE and WITHDRAW) sent per leave or return."""
    by_type = result["traffic"]["by_type"]
    return sum(by_type.get(kind, 0) for kind in kinds or ("ANNOUNCE", "WITHDRAW")) / EVENTS
