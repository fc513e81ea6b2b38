"""Tests for tests/sim/engine.py: shared signature verdicts are the ones routers would reach."""

from __future__ import annotations

import pytest

from mesh.envelope import DestKind, EnvelopeType
from mesh.router import Deliver, RouterConfig, Send
from tests.sim.engine import Graph, Sim


@pytest.mark.parametrize("share", [True, False])
def test_a_forged_copy_is_rejected_and_the_genuine_one_delivered(share: bool) -> None:
    sim = Sim(Graph(2, [(0, 1)]), RouterConfig(), seed=1, share_signature_checks=share)
    sim.connect_all(quiet=True)
    delivered: list[Deliver] = []
    sim.on_deliver = lambda node, d: delivered.append(d)
    sender, receiver = sim.routers
    envelope = sender.make(
        EnvelopeType.DATA,
        sim.now,
        dest_kind=DestKind.PEER,
        dest=receiver.identity.public_key,
        payload=b"genuine",
    )
    good = envelope.encode()
    forged = good[:-1] + bytes([good[-1] ^ 0x01])  # same signed part, broken signature
    sim.execute(0, [Send(0, forged), Send(0, good)])  # link 0 is node 0's end of edge 0
    sim.run_until(sim.now + 1.0)

    assert receiver.counters.get("dropped_bad_signature") == 1
    assert [d.envelope.payload for d in delivered] == [b"genuine"]
