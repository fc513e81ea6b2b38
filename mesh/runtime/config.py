"""How a node listens, dials and limits its links: :class:`NodeConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field

from mesh.routing.router import RouterConfig, room_routing
from mesh.runtime.answers import AnswerLimits
from mesh.wire.address import PeerAddress
from mesh.wire.link import LinkConfig
from mesh.wire.netkey import DEFAULT_NETWORK_KEY


@dataclass
class NodeConfig:
    """How a node listens, dials and limits its links."""

    listen: tuple[str, int] | None = ("127.0.0.1", 0)
    peers: list[PeerAddress] = field(default_factory=list)
    auto_connect: bool = True
    #: announce on the LAN and browse it (mDNS); found peers are dialed unless auto_connect is
    #: off. Off here so library users and tests opt in; ``meshnotes run`` turns it on.
    lan: bool = False
    target_links: int = 4
    max_pending_handshakes: int = 64
    network_key: bytes = DEFAULT_NETWORK_KEY
    link: LinkConfig = field(default_factory=LinkConfig)
    # rooms flood in a small mesh and go down each author's tree in a large one
    router: RouterConfig = field(default_factory=lambda: room_routing("auto"))
    reconnect_initial: float = 0.25
    reconnect_max: float = 30.0
    max_address_records: int = 1000
    address_record_ttl: float = 24 * 3600.0
    #: what one link's free requests (inventories, mail hand-over) may cost us
    answers: AnswerLimits = field(default_factory=AnswerLimits)
