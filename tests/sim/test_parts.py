"""Tests for sim/parts.py: a simulation spread over processes gives what one would."""

from __future__ import annotations

from typing import Any

import pytest

from mesh.routing.router import Close, RouterConfig
from mesh.wire.envelope import DestKind, EnvelopeType
from sim.engine import Sim
from sim.graph import Graph
from sim.parts import play_parts


def _pair() -> Sim:
    sim = Sim(Graph(3, [(0, 1), (1, 2)]), RouterConfig(), seed=4)
    sim.connect_all(quiet=True)
    return sim


def test_parts_deliver_across_their_border_and_a_close_reaches_the_far_part() -> None:
    sim = _pair()
    owner = [0, 0, 1]  # edge (1, 2) crosses from part 0 to part 1
    recipient = sim.routers[2].identity.public_key

    def play(part: int, peers: dict[int, Any]) -> dict[str, Any]:
        sim.partition(owner, part)
        sim.start_ticks()
        delivered: list[bytes] = []
        sim.on_deliver = lambda node, d: delivered.append(d.envelope.payload)
        if part == 0:
            envelope = sim.routers[0].make(
                EnvelopeType.DATA, sim.now, dest_kind=DestKind.PEER, dest=recipient, payload=b"hi"
            )
            sim.at(sim.now + 0.5, lambda: sim.originate(0, envelope))
            sim.at(sim.now + 2.0, lambda: sim.execute(1, [Close(2, "test")]))  # node 1's end
        sim.run_part(sim.now + 5.0, peers)
        return {
            "delivered": delivered,
            "up": sim.up[1],
            "links": [sorted(sim.routers[i].links) for i in range(3) if sim.mine(i)],
        }

    first, second = play_parts(2, play)
    assert first["delivered"] == [] and second["delivered"] == [b"hi"]
    assert not first["up"] and not second["up"]  # the far part heard of the close
    assert first["links"] == [[0], [1]] and second["links"] == [[]]


def test_a_part_that_fails_reports_its_traceback_and_the_others_stop() -> None:
    sim = _pair()

    def play(part: int, peers: dict[int, Any]) -> None:
        sim.partition([0, 0, 1], part)
        if part == 1:
            raise ValueError("broken part")
        sim.start_ticks()
        sim.run_part(sim.now + 5.0, peers)

    with pytest.raises(RuntimeError, match="broken part"):
        play_parts(2, play)
