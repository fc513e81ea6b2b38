"""Held updates: a note's updates that wait for what they build on, released when it comes.

An update may arrive before what it builds on: an editor's transaction
whose previous transaction has not come yet, a deletion of items not here
yet. pycrdt holds such an update back inside the document ("pending") and
retries all it holds at every later update, and it can hold one back for
good (see :class:`HeldUpdates`). Both cost: with thousands held, as when one
editor's history arrives before the other editor's it builds on, every
update re-checked everything held.

:class:`HeldUpdates` keeps them outside the document instead, indexed by
what each waits for, and applies one only once the document has it:

- an update's structs, per client, continue that client's clocks: one whose
  client's first clock in it is past the document's clock waits for that
  clock (read from the update's header: see :func:`crdt.updates.struct_starts`);
- an update that only deletes waits for the end of every clock range it
  deletes (read by pycrdt: :func:`crdt.updates.deletion_ends`).

Each waits in a heap per client, ordered by the clock it waits for; when a
client's clock grows only the updates waiting for a clock up to it are taken
off, so holding or releasing an update costs O(log n) heap operations and a
fixed number of pycrdt calls, however many are held. Released updates queue,
and :meth:`HeldUpdates.release` applies them a slice at a time, so that a
burst of thousands does not hold the event loop (the caller schedules the
slices: see crdt/notes.py).

What the header does not tell — the items of other clients an update's
structs sit next to — pycrdt still waits for: an update applied here whose
inserts pycrdt holds back stays "inside" until they are integrated. Holding
by a client's own clocks bounds those at about one per client (the next
update of that client waits here for the clocks held inside), and each is
checked, and applied again, when another client's clock grows: pycrdt has
been seen to hold one back after its dependency came (a note member lacked
one edit after every update had reached it, in tests/sim), and applying it
again integrates it.

Only a client's own clocks and deleted ranges are waited for here, never
another client's items: an update that waits here can then never wait,
through others, for itself (a merged update can hold both an item and what
was built on it elsewhere, which pycrdt integrates in part).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from crdt.updates import decodable, deletion_ends, inserts_held_back, state_map, struct_starts

#: released updates applied per slice by the caller (crdt/notes.py): measured ~40 us each
#: for keystroke-sized updates, so a slice stays well under 50 ms
RELEASE_SLICE = 256


@dataclass
class _Waiting:
    update: bytes
    needs: list[tuple[int, int]]  # (client, clock): the document's clock of client must reach it
    clients: list[int]  # the clients whose structs it carries (none: it only deletes)


class HeldUpdates:
    """One document's held updates: `apply` applies one to the document, `state` gives the
    document's state vector.

    `operations` counts the work done on held updates — updates read, heap
    pushes and pops, pycrdt checks and applies — which tests use to show the
    cost per update does not grow with the number held.
    """

    def __init__(self, apply: Callable[[bytes], None], state: Callable[[], bytes]) -> None:
        self._apply = apply
        self._state = state
        self._vector = state()
        self._clocks = state_map(self._vector)
        self._heaps: dict[int, list[tuple[int, int]]] = {}  # client -> (clock, key)
        self._waiting: dict[int, _Waiting] = {}
        self._ready: deque[_Waiting] = deque()
        self._inside: dict[int, _Waiting] = {}  # applied, pycrdt holds inserts back
        self._next_key = 0
        self.operations = 0

    # -- what is held -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether released updates wait for :meth:`release`."""
        return bool(self._ready)

    @property
    def pending(self) -> bool:
        """Whether an update offered is not integrated yet (held here, queued, or held back
        by pycrdt); its deletions held back by pycrdt are not looked at."""
        return bool(self._waiting or self._ready or self._inside)

    def held(self) -> set[bytes]:
        """The updates offered and not integrated yet."""
        return {w.update for w in (*self._waiting.values(), *self._ready, *self._inside.values())}

    # -- offering and releasing ------------------------------------------------------

    def offer(self, update: bytes) -> bool:
        """Apply `update` now if the document holds what it waits for, else hold it; return
        whether it was applied. Updates it releases wait for :meth:`release`.

        An update pycrdt cannot decode is never held: applying it raises what
        `apply` raises for it.
        """
        self._refresh()
        self.operations += 1
        entry = self._read(update)
        if self._lacks(entry) and decodable(update):
            self.operations += 1
            self._wait(self._key(), entry)
            return False
        self._integrate(entry)
        return True

    def release(self, limit: int | None = None) -> int:
        """Apply up to `limit` (all: None) released updates; return how many were applied."""
        self._refresh()
        done = 0
        while self._ready and (limit is None or done < limit):
            self._integrate(self._ready.popleft())
            done += 1
        return done

    # -- inside ------------------------------------------------------------------

    def _key(self) -> int:
        self._next_key += 1
        return self._next_key

    def _read(self, update: bytes) -> _Waiting:
        starts = struct_starts(update)
        if starts:
            return _Waiting(update, [(c, k) for c, k in starts if k > 0], [c for c, _ in starts])
        ends = deletion_ends(update) if starts is not None else None
        return _Waiting(update, list((ends or {}).items()), [])

    def _lacks(self, entry: _Waiting) -> bool:
        return any(self._clocks.get(c, 0) < k for c, k in entry.needs)

    def _wait(self, key: int, entry: _Waiting) -> bool:
        """Hold `entry` in the heap of its first need the document lacks; False: none."""
        for client, clock in entry.needs:
            if self._clocks.get(client, 0) < clock:
                heapq.heappush(self._heaps.setdefault(client, []), (clock, key))
                self._waiting[key] = entry
                self.operations += 1
                return True
        return False

    def _integrate(self, entry: _Waiting) -> None:
        self._apply(entry.update)
        self.operations += 1
        grew = self._refresh()
        if entry.clients and inserts_held_back(entry.update, self._vector):
            self._inside[self._key()] = entry
        self.operations += 1
        if grew and self._inside:
            self._retry_inside(grew)

    def _retry_inside(self, grew: set[int]) -> None:
        """Drop those inside pycrdt integrated; apply again, once, those that may be stuck."""
        for key, entry in list(self._inside.items()):
            self.operations += 1
            if not inserts_held_back(entry.update, self._vector):
                del self._inside[key]
                continue
            if grew - set(entry.clients):  # another client's clock grew: what it waits for?
                self._apply(entry.update)
                self.operations += 2
                grown = self._refresh()
                if not inserts_held_back(entry.update, self._vector):
                    del self._inside[key]
                grew |= grown

    def _refresh(self) -> set[int]:
        """Read the document's clocks; release what waited for those that grew; return them."""
        vector = self._state()
        if vector == self._vector:
            return set()
        self._vector = vector
        clocks = state_map(vector)
        grew = {c for c, k in clocks.items() if k > self._clocks.get(c, 0)}
        self._clocks = clocks
        for client in grew:
            heap = self._heaps.get(client)
            while heap and heap[0][0] <= clocks[client]:
                _, key = heapq.heappop(heap)
                self.operations += 1
                entry = self._waiting.pop(key)
                if not self._wait(key, entry):
                    self._ready.append(entry)
            if heap is not None and not heap:
                del self._heaps[client]
        return grew
