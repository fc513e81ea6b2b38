"""The routing core's settings: bounds, timings, and how room envelopes travel."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from mesh.routing.gossip import GossipConfig


@dataclass(frozen=True)
class RouterConfig:
    """Bounds and timings of the routing core; the defaults suit a small mesh."""

    seen_capacity: int = 100_000
    seen_ttl: float = 600.0
    max_routes: int = 10_000
    route_ttl: float = 90.0
    announce_interval: float = 30.0
    announce_jitter: float = 0.2
    max_age: float = 7 * 24 * 3600.0
    max_future: float = 300.0
    link_rate: float = 20_000.0
    link_burst: float = 40_000.0
    ban_threshold: float = 100.0
    penalty_decay: float = 1.0
    ban_duration: float = 600.0
    max_bans: int = 10_000
    reshare_delay: float = 1.0  # wait before re-sharing a path a neighbour withdrew
    link_settle: float = 2.0  # a link this young swapped path tables on link-up
    park_ttl: float = 30.0  # a directed envelope whose path was lost waits this long
    max_parked: int = 1000  # parked envelopes at most; past it they flood as before
    # a room envelope that reached us with fewer than this many links left to cross is
    # marked, and a later copy over fewer links goes on again (mesh/routing/hopmarks.py; 0: off)
    room_hop_reserve: int = 3
    # a node that left is withdrawn only two links around it (its neighbours and theirs), its
    # return taken back only there, feasibly (mesh/routing/paths.py, "Departures"): far nodes
    # keep their paths, and what they send it waits in its neighbourhood
    local_departures: bool = False
    # announces cross at most this many links (0: the whole mesh, MAX_HOPS): a node keeps
    # paths to the nodes around it, and finds farther ones when it needs them, with a PATH
    # request (mesh/routing/discovery.py); a leave or return then costs its neighbourhood
    announce_radius: int = 0
    room_gossip: bool = False  # room envelopes go through the topic mesh (mesh/routing/gossip.py)
    gossip: GossipConfig = field(default_factory=GossipConfig)


#: how room envelopes travel (``meshnotes run --rooms``): to every link; down each author's
#: reverse shortest-path tree with IHAVE/IWANT repair (:mod:`mesh.routing.gossip`); or ``auto``,
#: which floods while the node knows fewer than AUTO_TREE_FROM destinations and takes the
#: tree past that (docs/scale.md measures all three)
ROOM_MODES = ("flood", "tree", "auto")
AUTO_TREE_FROM = 64


def room_routing(
    mode: str, config: RouterConfig | None = None, tree_from: int = AUTO_TREE_FROM
) -> RouterConfig:
    """`config` (default: the defaults) with room envelopes routed as `mode` says.

    `tree_from` is where ``auto`` switches from flooding to the tree, in known destinations.
    """
    if mode not in ROOM_MODES:
        raise ValueError(f"room mode must be one of {', '.join(ROOM_MODES)}, not {mode!r}")
    config = config or RouterConfig()
    if mode == "flood":
        return replace(config, room_gossip=False)
    tree_from = tree_from if mode == "auto" else 0
    return replace(
        config, room_gossip=True, gossip=replace(config.gossip, tree=True, tree_from=tree_from)
    )


def room_mode(config: RouterConfig) -> str:
    """The ROOM_MODES name of `config`'s room routing (``topic mesh`` for a gossipsub mesh)."""
    if not config.room_gossip:
        return "flood"
    if not config.gossip.tree:
        return "topic mesh"
    return "auto" if config.gossip.tree_from else "tree"
