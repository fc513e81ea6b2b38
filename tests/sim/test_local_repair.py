"""Route repair that stays local (RouterConfig.local_departures), at 300 nodes with 20% churn.

Operation counts, not timings: the old repair costs 1,968 announce and withdraw
frames per churn event (one leave or one return) in this scenario (docs/scale.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sim.churn import churn_run, frames_per_churn_event


@pytest.fixture(scope="module")
def local() -> dict[str, Any]:
    return churn_run(local_departures=True)


def test_a_leave_or_a_return_costs_frames_near_it_not_across_the_mesh(
    local: dict[str, Any],
) -> None:
    assert frames_per_churn_event(local) < 400  # the mesh-wide repair: 1,968
    counters = local["traffic"]["router_counters"]
    assert counters["withdrawals_kept_local"] > 0
    assert counters["repaired_locally"] > 0


def test_every_direct_message_and_room_message_still_arrives(local: dict[str, Any]) -> None:
    direct = local["direct"]
    assert direct["delivery_ratio"] == 1.0
    assert direct["acked"] == direct["sent"]
    room = local["room"]
    assert room["delivery_ratio_members_online_throughout"]["mean"] == 1.0
    note = local["note"]
    assert note["converged"] and note["identical"]
