"""The 100-node scale scenario (benchmarks/scale.py runs the large ones): delivery, not timing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mesh.routing.gossip import GossipConfig
from mesh.routing.router import room_routing
from sim.scenarios import Scenario, run

TREE = GossipConfig(tree=True)
AUTO = room_routing("auto").gossip  # a node's default: flood below 64 known peers, tree above


def churned(**kw: Any) -> dict[str, Any]:
    return run(Scenario(nodes=100, churn=0.2, direct=60, rooms=3, room_messages=4, **kw))


@pytest.fixture(scope="module")
def flood() -> dict[str, Any]:
    return churned()


@pytest.fixture(scope="module")
def gossip() -> dict[str, Any]:
    return churned(gossip=True)


@pytest.fixture(scope="module")
def gossip_tree() -> dict[str, Any]:
    return churned(gossip=True, gossip_config=TREE)


@pytest.fixture(scope="module")
def auto() -> dict[str, Any]:
    return churned(gossip=True, gossip_config=AUTO)


MODES = ["flood", "gossip", "gossip_tree", "auto"]


@pytest.mark.parametrize("mode", MODES)
def test_every_direct_message_reaches_its_recipient_despite_churn(
    mode: str, request: pytest.FixtureRequest
) -> None:
    result = request.getfixturevalue(mode)
    direct = result["direct"]
    assert direct["delivery_ratio"] == 1.0  # every recipient comes back online at some point
    assert direct["acked"] == direct["sent"]
    # on a known path a message costs one transmission per hop; one whose path was lost
    # waits for a new one instead of flooding the mesh
    assert direct["transmissions_per_shortest_path"]["median"] == 1.0
    assert direct["transmissions_per_shortest_path"]["mean"] <= 2.0
    assert result["traffic"]["router_counters"]["unparked"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_the_shared_note_converges_identically_at_every_member(
    mode: str, request: pytest.FixtureRequest
) -> None:
    note = request.getfixturevalue(mode)["note"]
    assert note["members"] == 20 and note["members_away"] >= 1
    assert note["edits"] == 20 * 3
    assert note["converged"] and note["identical"]
    assert note["converged_after_s"] <= 30.0  # virtual seconds after the last return


def test_flooded_rooms_reach_members_online_throughout_once_per_neighbour(
    flood: dict[str, Any],
) -> None:
    room = flood["room"]
    assert room["delivery_ratio_members_online_throughout"]["mean"] == 1.0
    assert room["copies_per_member"]["mean"] <= flood["graph"]["mean_degree"]


def test_gossip_rooms_reach_online_members_with_no_more_copies_than_flooding(
    flood: dict[str, Any], gossip: dict[str, Any]
) -> None:
    assert gossip["room"]["delivery_ratio_members_online_throughout"]["mean"] == 1.0
    assert gossip["room"]["copies_per_member"]["mean"] <= flood["room"]["copies_per_member"]["mean"]
    assert gossip["gossip"]["mesh_peers_per_topic"]["max"] <= 12  # d_hi


@pytest.mark.parametrize("mode", ["gossip_tree", "auto"])
def test_rooms_down_their_authors_trees_reach_every_online_member_in_at_most_three_copies(
    flood: dict[str, Any], mode: str, request: pytest.FixtureRequest
) -> None:
    # auto takes the tree here: every node knows 99 peers, past its 64
    gossip_tree = request.getfixturevalue(mode)
    room = gossip_tree["room"]
    assert room["delivery_ratio_members_online_throughout"]["mean"] == 1.0
    assert room["copies_per_member"]["mean"] <= 3.0
    assert room["copies_per_member"]["mean"] < flood["room"]["copies_per_member"]["mean"]
    assert gossip_tree["gossip"]["mesh_peers_per_topic"]["max"] == 0.0  # no mesh is grafted


def test_same_seed_same_run() -> None:
    def measured(seed: int) -> dict[str, Any]:
        result = run(Scenario(nodes=40, churn=0.2, gossip=True, direct=10, rooms=1, seed=seed))
        return {k: v for k, v in result.items() if k != "cost"}

    assert measured(5) == measured(5)


def test_a_run_spread_over_processes_measures_what_one_process_does() -> None:
    # the parts swap frames across their border each lookahead window; the same events in
    # the same order give the same metrics (only the cost, and calls each part replays, differ)
    def measured(parts: int) -> dict[str, Any]:
        result = run(
            Scenario(nodes=60, churn=0.2, gossip=True, gossip_config=TREE, direct=20, loss=0.01),
            parts=parts,
        )
        assert result["cost"]["parts"] == parts
        del result["cost"]
        return result

    one = measured(1)
    assert one["traffic"]["lost_to_link_loss"] > 0 and one["note"]["converged"]
    assert measured(2) == one
    assert measured(3) == one


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], object]:
    """benchmarks.scale's main, writing under tmp_path and running no scenario if it gets far."""
    import benchmarks.scale as scale
    import benchmarks.scale_doc as scale_doc

    for module, name in (
        (scale, "RESULTS"),
        (scale, "DOC"),
        (scale_doc, "DOC"),
        (scale_doc, "IMG"),
    ):
        monkeypatch.setattr(module, name, tmp_path / name.lower())
    for module in (scale, scale_doc):
        monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(scale, "scenarios", lambda sizes, seed: [])
    return scale.main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "1000:flood"], "expected NODES:MODE:CHURN"),
        (["--only", "1000:gossip:0.2"], "mode must be one of"),
        (["--only", "many:flood:0.2"], "NODES is a whole number"),
        (["--only", "1000:flood:20"], "CHURN from 0 to 1"),
        (["--sizes", "100,lots"], "node counts of 2 or more"),
        (["--sizes", "0,100"], "node counts of 2 or more"),
        (["--sizes", ""], "node counts of 2 or more"),
        (["--report-only"], "run the scenarios"),
        (["--parts", "0"], "1 or more"),
        (["--parts", "2", "--workers", "2"], "spread one scenario, or run several at once"),
    ],
)
def test_the_scenario_runner_refuses_bad_arguments_in_one_line(
    args: list[str],
    message: str,
    runner: Callable[[list[str]], object],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        runner(args)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_scenario_runner_takes_churn_as_a_share_or_a_percentage() -> None:
    from benchmarks.scale import _only

    assert _only("200:gossip tree:20%", 1)[1].churn == _only("200:gossip tree:0.2", 1)[1].churn
    assert _only("200:gossip tree:20%", 1) == (
        "gossip tree",
        Scenario(nodes=200, churn=0.2, gossip=True, gossip_config=TREE, seed=1),
    )
    mode, zones = _only("20000:zones:0.2", 1)  # the tree, announces within two links
    assert (mode, zones.announce_radius, zones.gossip_config) == ("zones", 2, TREE)


def test_with_one_frame_in_a_hundred_lost_messages_still_arrive_and_the_note_converges() -> None:
    # links are reliable streams in the product; loss stands for what a fault may still drop.
    # Retries carry direct messages, the tree's other branches and catch-up carry rooms
    result = churned(gossip=True, gossip_config=TREE, loss=0.01)
    assert result["traffic"]["lost_to_link_loss"] > 0
    assert result["direct"]["delivery_ratio"] == 1.0
    assert result["direct"]["acked"] == result["direct"]["sent"]
    assert result["room"]["delivery_ratio_members_online_throughout"]["mean"] == 1.0
    assert result["note"]["converged"] and result["note"]["identical"]
