"""Real processes under churn (benchmarks/realmesh.py, short form): 6 nodes on a random graph
of mean degree 4, links 20-80 ms each way and cut at random by the userspace shaper, one node
killed with SIGKILL and restarted, while DMs, room messages and note edits go on.

Skipped, with the reason, where network namespaces are not permitted (not root, no iproute2).
The full run (30 nodes, 10 minutes, against the simulator) is ``python -m benchmarks.realmesh``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.netmesh import unavailable
from benchmarks.realmesh import make_plan, run_real, summarize

REASON = unavailable()
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
    # about a minute and a half here: six nodes' start, room and note, 45 s of traffic, the
    # stragglers
    pytest.mark.timeout(600),
]


def test_every_dm_room_message_and_edit_arrives_across_kills_and_cut_links(
    tmp_path: Path,
) -> None:
    plan = make_plan(6, 0.75, seed=7, dm_every=3.0, post_every=6.0, cut_mean=30.0)
    assert len(plan.kills) == 1
    record, seen = run_real(plan, tmp_path, netns=True, drain=240.0)
    figures = summarize(
        plan,
        sorted(record.sent_dms),
        sorted(record.sent_posts),
        seen["dm_delays"],
        seen["post_delays"],
    )

    assert record.away, "the killed node was restarted"
    assert figures["dms_sent"] >= len(plan.dms) - 2, f"control calls failed: {record}"
    assert figures["dms_delivered"] == figures["dms_sent"], figures
    assert figures["room_owed"] > 0
    assert figures["room_delivered"] == figures["room_owed"], figures
    assert record.edits, "some note edits were made"
    assert record.note_converged, "the note's text is byte-identical on every node"
