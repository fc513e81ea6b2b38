"""One simulation spread over processes: which node each part plays, and running the parts.

:meth:`sim.engine.Sim.partition` makes a copy of a simulation play only some
nodes; :func:`split` chooses them (even work, slow links between parts) and
:func:`play_parts` runs one copy per part, each in a process of its own,
connected by pipes for :meth:`sim.engine.Sim.run_part`.
"""

from __future__ import annotations

import itertools
import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from sim.graph import Graph

_T = TypeVar("_T")


def split(graph: Graph, parts: int, latency: list[float]) -> list[int]:
    """Each node's part, for a run over `parts` processes: even work, slow links between parts.

    The parts advance in windows as long as the fastest link between two of
    them (:meth:`Sim.lookahead`), so links are merged into groups fastest
    first, as long as a group stays within a part's share of the work (a
    node's degree, plus one, stands for its work); the groups then go, the
    biggest first, to the part with the least work so far.
    """
    weight = [1 + len(a) for a in graph.adjacency]
    share = sum(weight) / parts
    parent = list(range(graph.n))
    size = weight[:]

    def root(u: int) -> int:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    for e in sorted(range(len(graph.edges)), key=latency.__getitem__):
        a, b = (root(w) for w in graph.edges[e])
        if a != b and size[a] + size[b] <= share:
            parent[b] = a
            size[a] += size[b]
    groups: dict[int, list[int]] = {}
    for u in range(graph.n):
        groups.setdefault(root(u), []).append(u)
    owner = [0] * graph.n
    load = [0] * parts
    for r in sorted(groups, key=lambda r: (-size[r], r)):
        part = load.index(min(load))
        load[part] += size[r]
        for u in groups[r]:
            owner[u] = part
    return owner


def play_parts(parts: int, play: Callable[[int, dict[int, Connection]], _T]) -> list[_T]:
    """Run ``play(part, peers)`` for each part in a process of its own; the results by part.

    This process plays part 0 and forks one child per other part (each child
    starts from this process's state: build the simulation first). `peers`
    maps every other part to a pipe for :meth:`Sim.run_part`. A child's error
    comes back here as a RuntimeError with its traceback; a child that dies
    closes its pipes, so the others stop instead of waiting.
    """
    if parts <= 1:
        return [play(0, {})]
    ctx = multiprocessing.get_context("fork")
    ends: dict[tuple[int, int], Connection] = {}  # (part, other part) -> its end of their pipe
    for a, b in itertools.combinations(range(parts), 2):
        ends[a, b], ends[b, a] = ctx.Pipe()
    results = [ctx.Pipe(duplex=False) for _ in range(1, parts)]  # (read end, write end)

    def keep_only(part: int) -> dict[int, Connection]:
        for (owner, _), conn in ends.items():
            if owner != part:
                conn.close()
        return {other: conn for (owner, other), conn in ends.items() if owner == part}

    def child(part: int) -> None:
        write = results[part - 1][1]
        for i, (read, other) in enumerate(results):
            read.close()
            if i != part - 1:
                other.close()
        try:
            write.send(("ok", play(part, keep_only(part))))
        except BaseException:
            write.send(("error", traceback.format_exc()))

    children = [ctx.Process(target=child, args=(p,), daemon=True) for p in range(1, parts)]
    for process in children:
        process.start()
    for _, write in results:
        write.close()
    peers = keep_only(0)
    try:
        out = [play(0, peers)]
        for part, (read, _) in enumerate(results, start=1):
            out.append(_child_result(part, read))
        return out
    except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
        for part, (read, _) in enumerate(results, start=1):
            if read.poll(5.0):
                _child_result(part, read)  # raises with the child's traceback, if it sent one
        raise RuntimeError(f"a simulation part stopped: {exc!r}") from exc
    finally:
        for conn in peers.values():
            conn.close()  # a child still waiting on us stops
        for process in children:
            process.join(timeout=10.0)
            if process.is_alive():
                process.kill()
                process.join()


def _child_result(part: int, read: Connection) -> Any:
    try:
        status, value = read.recv()
    except EOFError:
        raise RuntimeError(f"simulation part {part} exited without a result") from None
    if status != "ok":
        raise RuntimeError(f"simulation part {part} failed:\n{value}")
    return value
