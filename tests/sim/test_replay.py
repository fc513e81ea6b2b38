"""Tests for sim/replay.py: a recorded graph, delays, absences, cuts and traffic, replayed."""

from __future__ import annotations

from sim.replay import Trace, replay

# a line 0 - 1 - 2 - 3 and a chord 1 - 3: node 2 can be away without cutting 3 off
EDGES = [(0, 1), (1, 2), (1, 3), (2, 3)]
DELAYS = [0.02, 0.05, 0.08, 0.06]


def trace(**kw: object) -> Trace:
    fields: dict[str, object] = {
        "n": 4,
        "edges": EDGES,
        "delays": DELAYS,
        "away": [],
        "cuts": [],
        "dms": [],
        "posts": [],
        "end": 120.0,
    }
    fields.update(kw)
    return Trace(**fields)  # type: ignore[arg-type]


def test_a_dm_takes_the_recorded_link_delays_of_its_shortest_path() -> None:
    # 0 -> 1 -> 3: 20 ms + 80 ms
    got = replay(trace(dms=[(0, 3, 10.0)]))
    assert got.dm_delays[0] is not None
    assert abs(got.dm_delays[0] - 0.10) < 1e-6


def test_a_dm_to_a_node_away_arrives_after_it_returns() -> None:
    got = replay(trace(away=[(3, 5.0, 40.0)], dms=[(0, 3, 10.0)]))
    assert got.dm_delays[0] is not None
    assert got.dm_delays[0] >= 30.0  # sent at 10 s, its recipient back at 40 s


def test_a_room_message_reaches_every_member_and_one_away_catches_up() -> None:
    got = replay(trace(away=[(2, 5.0, 30.0)], posts=[(0, 10.0)]))
    delays = got.post_delays[0]
    assert set(delays) == {1, 2, 3}
    assert delays[1] < 1.0 and delays[3] < 1.0
    assert delays[2] >= 20.0  # back at 30 s, it had the post from a neighbour's room log


def test_a_cut_link_comes_back_after_the_redial_pause() -> None:
    # 1 - 3 cut at 10 s: the DM at 10.1 s goes 0 -> 1 -> 2 -> 3 or waits for the redial
    got = replay(trace(cuts=[(2, 10.0)], dms=[(0, 3, 10.1)], redial=0.25))
    assert got.dm_delays[0] is not None
    assert got.dm_delays[0] > 0.105  # not the 100 ms of the cut path (the detour: 130 ms)
