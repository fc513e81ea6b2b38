"""What the routing core asks the node to do: the actions the router returns.

Frozen dataclasses, carried out by the I/O layer (mesh/runtime/node.py) or a
simulator; importable from :mod:`mesh.routing.router` too.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesh.wire.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Send:
    """Send `data` (an encoded envelope) on link `link`."""

    link: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand `envelope` (verified) to the node; `link` is where it came from, None if local."""

    envelope: Envelope
    link: int | None


@dataclass(frozen=True, slots=True)
class Close:
    """Close link `link`, for `reason`."""

    link: int
    reason: str


@dataclass(frozen=True, slots=True)
class Keep:
    """Show a relayed envelope to the mailbox; `store` when its destination is not a neighbour.

    Receipts are shown even when not stored: they delete what they acknowledge.
    """

    envelope: Envelope
    store: bool


Action = Send | Deliver | Close | Keep
