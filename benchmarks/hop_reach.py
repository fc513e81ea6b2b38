"""How many nodes a room envelope's flood strands at the hop limit, on the scale runs' graphs.

Usage::

    python -m benchmarks.hop_reach --nodes 5000 --authors 50

A model of the flood, not the router: the graph and link latencies of
``sim.scenarios`` (seed 1), each node passing on the first copy to reach it,
within the hop limit (8 links), and later copies only as
:mod:`mesh.routing.hopmarks` does (``--reserve 0``: never, the old rule).
Prints the share of (author, node) pairs the flood misses, the share farther
than the hop limit by the shortest path, and the copies sent per node.
"""

from __future__ import annotations

import argparse
import heapq
import random

from mesh.wire.envelope import MAX_HOPS
from sim.graph import Graph


def flood(adjacency: list[list[tuple[int, float]]], author: int, reserve: int) -> tuple[int, int]:
    """(nodes never reached, copies sent) for one envelope flooded from `author`."""
    best: list[int | None] = [None] * len(adjacency)
    sent = 0
    heap: list[tuple[float, int, int, int]] = [(0.0, 0, author, -1)]
    while heap:
        when, hops, node, came_from = heapq.heappop(heap)
        had = best[node]
        # a later copy goes on only over fewer links than a marked one (near the limit)
        if had is not None and not (hops < had and MAX_HOPS - had < reserve):
            continue
        best[node] = hops
        if hops + 1 > MAX_HOPS:
            continue
        for other, latency in adjacency[node]:
            if other != came_from:
                sent += 1
                heapq.heappush(heap, (when + latency, hops + 1, other, node))
    return sum(1 for b in best if b is None), sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--authors", type=int, default=50)
    parser.add_argument("--reserve", type=int, default=3, help="0: the old rule")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.nodes < 2 or args.authors < 1 or args.reserve < 0:
        parser.error("--nodes >= 2, --authors >= 1, --reserve >= 0")
    graph = Graph.random(args.nodes, 6.0, random.Random(args.seed))
    draw = random.Random(args.seed)  # as sim.engine.Sim draws its link latencies
    latency = [draw.uniform(0.005, 0.030) for _ in graph.edges]
    adjacency: list[list[tuple[int, float]]] = [[] for _ in range(graph.n)]
    for e, (u, v) in enumerate(graph.edges):
        adjacency[u].append((v, latency[e]))
        adjacency[v].append((u, latency[e]))
    missed = sent = farther = 0
    authors = random.Random(args.seed + 4).sample(range(graph.n), min(args.authors, graph.n))
    for author in authors:
        lost, copies = flood(adjacency, author, args.reserve)
        missed += lost
        sent += copies
        farther += sum(1 for d in graph.distances(author) if d > MAX_HOPS)
    pairs = len(authors) * (graph.n - 1)
    print(
        f"{graph.n} nodes, reserve {args.reserve}: missed {missed / pairs:.3%} of pairs,"
        f" farther than {MAX_HOPS} links {farther / pairs:.3%},"
        f" {sent / len(authors) / graph.n:.2f} copies sent per node"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
