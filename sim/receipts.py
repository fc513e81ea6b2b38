"""The RECEIPT a simulated recipient sends back for a direct message (chat/outbox.py waits)."""

from __future__ import annotations

from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from sim.engine import Sim


def acknowledge(sim: Sim, node: int, envelope: Envelope) -> None:
    """Have `node` send the author of `envelope` a PEER-addressed RECEIPT naming its id."""
    receipt = sim.routers[node].make(
        EnvelopeType.RECEIPT,
        sim.now,
        dest_kind=DestKind.PEER,
        dest=envelope.author,
        payload=envelope.message_id,
    )
    sim.originate(node, receipt)
