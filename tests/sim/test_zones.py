"""Paths found when needed (RouterConfig.announce_radius 2), at 300 nodes with 20% churn.

Operation counts, not timings: announces that cross the whole mesh cost 1,968
announce and withdraw frames per churn event (one leave or one return) in this
scenario (docs/scale.md); with a radius, a leave or a return is told only
around the node, and farther paths are asked for by the traffic that needs them.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sim.churn import NODES, churn_run, frames_per_churn_event


@pytest.fixture(scope="module")
def zones() -> dict[str, Any]:
    return churn_run(announce_radius=2)


def test_a_leave_or_a_return_costs_frames_near_it(zones: dict[str, Any]) -> None:
    assert frames_per_churn_event(zones) < 100
    assert frames_per_churn_event(zones, "TABLE") < 20
    counters = zones["traffic"]["router_counters"]
    assert counters["paths_dropped_quietly"] > 0  # paths found on demand go without a word
    # the cost moved to the traffic: requests, most of them rings, each answered
    assert counters["path_rings_sent"] > 0
    assert counters["paths_found"] > 0
    # every node keeps paths to its neighbourhood, to the rooms' members (their announces
    # cross the mesh: about 220 here) and to those it talked with, not to all (297 before)
    assert zones["tables"]["routes_per_node"]["mean"] < 0.8 * (NODES - 1)


def test_every_message_arrives_along_short_paths(zones: dict[str, Any]) -> None:
    direct = zones["direct"]
    assert direct["delivery_ratio"] == 1.0
    assert direct["acked"] == direct["sent"]
    assert direct["transmissions_per_shortest_path"]["mean"] <= 1.5
    room = zones["room"]
    assert room["delivery_ratio_members_online_throughout"]["mean"] == 1.0
    note = zones["note"]
    assert note["converged"] and note["identical"]
