"""The simulator's topology: an undirected graph, random and connected, with BFS distances."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass
class Graph:
    """An undirected graph on nodes ``0..n-1``, edges as ``(u, v)`` with ``u < v``."""

    n: int
    edges: list[tuple[int, int]]
    adjacency: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.adjacency = [[] for _ in range(self.n)]
        for u, v in self.edges:
            self.adjacency[u].append(v)
            self.adjacency[v].append(u)

    @classmethod
    def random(cls, n: int, mean_degree: float, rng: random.Random) -> Graph:
        """A connected random graph: a random spanning tree plus uniform random extra edges."""
        order = list(range(n))
        rng.shuffle(order)
        edges: set[tuple[int, int]] = set()
        for i in range(1, n):
            u, v = order[i], order[rng.randrange(i)]
            edges.add((min(u, v), max(u, v)))
        target = max(n - 1, round(n * mean_degree / 2))
        while len(edges) < target:
            u, v = rng.randrange(n), rng.randrange(n)
            if u != v:
                edges.add((min(u, v), max(u, v)))
        return cls(n, sorted(edges))

    def distances(self, source: int) -> list[int]:
        """Hop counts from `source` by BFS (-1 when unreachable)."""
        dist = [-1] * self.n
        dist[source] = 0
        queue = deque([source])
        while queue:
            u = queue.popleft()
            for w in self.adjacency[u]:
                if dist[w] < 0:
                    dist[w] = dist[u] + 1
                    queue.append(w)
        return dist

    def within(self, source: int, radius: int) -> dict[int, int]:
        """Hop counts from `source` of the nodes at most `radius` links away (BFS, cut short)."""
        dist = {source: 0}
        frontier = [source]
        for d in range(1, radius + 1):
            ring = []
            for u in frontier:
                for w in self.adjacency[u]:
                    if w not in dist:
                        dist[w] = d
                        ring.append(w)
            frontier = ring
        return dist
