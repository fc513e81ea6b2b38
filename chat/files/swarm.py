"""Which chunk to ask of which holder, and when to ask again: one fetch, sans-I/O.

A :class:`Swarm` knows the chunks still missing and, for each holder, what it
holds and what it was asked for. :meth:`Swarm.requests` fills every holder's
window (``window`` chunks in flight each) from the chunks nobody is fetching,
rarest first (held by the fewest holders halfway through their own fetch;
ties, and every chunk while all holders are whole, lowest first), so several
holders serve one file at once and a chunk few hold is fetched while they are
still there, not last; a chunk not answered by
its deadline goes back to the front of the queue for any holder to serve. The
deadline follows each holder's answers: three times its smoothed time to
answer (:data:`MIN_WAIT` at least, ``timeout`` at most, ``timeout`` until it
answered once), so a relay killed mid-transfer costs seconds, not minutes. The
caller passes ``now`` in and sends what it is told; the swarm never reads a
clock (:meth:`Swarm.next_deadline` says when it next needs one).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: chunks in flight per holder (64 KiB each: 1 MiB)
WINDOW = 16
#: seconds a holder has to answer a chunk before it is asked of anyone again (at most)
TIMEOUT = 15.0
#: the shortest wait for a chunk, however fast its holder answered before
MIN_WAIT = 1.0


@dataclass
class Holder:
    """One holder of the file: what it holds (None: all) and what it owes us."""

    held: set[int] | None
    window: int
    #: chunk -> (asked at, deadline)
    inflight: dict[int, tuple[float, float]] = field(default_factory=dict)
    resting_until: float = 0.0
    served: int = 0
    timeouts: int = 0
    #: smoothed seconds from asking to the chunk's arrival (None: no answer yet)
    srtt: float | None = None

    def holds(self, index: int) -> bool:
        return self.held is None or index in self.held


class Swarm:
    """The fetch of one file of `chunks` chunks, `have` of them already kept."""

    def __init__(
        self, chunks: int, have: set[int], *, window: int = WINDOW, timeout: float = TIMEOUT
    ) -> None:
        self.chunks = chunks
        self.window = window
        self.timeout = timeout
        self.missing = set(range(chunks)) - have
        self.queue: deque[int] = deque(sorted(self.missing))
        self.holders: dict[bytes, Holder] = {}
        #: chunk -> how many partial holders hold it (whole holders hold every chunk)
        self.copies: dict[int, int] = {}
        self.duplicates = 0
        self.timeouts = 0

    @property
    def done(self) -> bool:
        return not self.missing

    def add_holder(self, peer: bytes, held: set[int] | None) -> None:
        """A peer said it holds these chunks (None: every one); it may say so again, updated.

        Chunks asked of it that it now says it lacks go back to the queue.
        """
        holder = self.holders.get(peer)
        self._count(held, 1)
        if holder is None:
            self.holders[peer] = Holder(held, self.window)
            return
        self._count(holder.held, -1)
        holder.held = held
        if held is not None:
            lacked = {i: d for i, (_, d) in holder.inflight.items() if i not in held}
            for index in lacked:
                del holder.inflight[index]
            self._requeue(lacked)

    def remove_holder(self, peer: bytes) -> None:
        """Ask this peer nothing more; what it owes goes back to the queue."""
        holder = self.holders.pop(peer, None)
        if holder is not None:
            self._count(holder.held, -1)
            self._requeue({i: d for i, (_, d) in holder.inflight.items()})

    def _count(self, held: set[int] | None, step: int) -> None:
        """Add (or take away) a partial holder's chunks to the copies counted of each."""
        if held is None:
            return
        copies = self.copies
        for index in held:
            left = copies.get(index, 0) + step
            if left > 0:
                copies[index] = left
            else:
                copies.pop(index, None)

    def rest(self, peer: bytes, now: float, seconds: float) -> None:
        """A holder said it is busy: ask it nothing for `seconds`."""
        holder = self.holders.get(peer)
        if holder is not None:
            holder.resting_until = now + seconds
            self._requeue({i: d for i, (_, d) in holder.inflight.items()})
            holder.inflight = {}

    def received(self, peer: bytes, index: int, now: float) -> bool:
        """A checked chunk came from `peer`; True if it was still missing (keep it)."""
        holder = self.holders.get(peer)
        if holder is not None:
            asked = holder.inflight.pop(index, None)
            holder.served += 1
            if asked is not None:
                sample = max(0.0, now - asked[0])
                holder.srtt = sample if holder.srtt is None else 0.875 * holder.srtt + sample / 8
        if index not in self.missing:
            self.duplicates += 1
            return False
        self.missing.discard(index)
        for other in self.holders.values():
            other.inflight.pop(index, None)
        return True

    def rejected(self, peer: bytes, index: int) -> None:
        """A chunk from `peer` failed its check: it is asked of someone else, and `peer` dropped."""
        holder = self.holders.pop(peer, None)
        if holder is not None:
            self._count(holder.held, -1)
        owed = {i: d for i, (_, d) in holder.inflight.items()} if holder is not None else {}
        owed[index] = 0.0
        self._requeue(owed)

    def lost(self, index: int) -> None:
        """A chunk kept earlier turned out bad (the final check): fetch it again."""
        if index not in self.missing:
            self.missing.add(index)
            self.queue.appendleft(index)

    def requests(
        self, now: float, unreachable: frozenset[bytes] = frozenset()
    ) -> list[tuple[bytes, list[int]]]:
        """What to ask of whom now: late chunks go back to the queue, free windows fill up.

        Holders in `unreachable` (no path to them now) are asked nothing: a request
        would only wait in the mesh for a path and come back with the ones made since.
        """
        self._expire(now)
        asks: list[tuple[bytes, list[int]]] = []
        # a holder is asked again once a quarter of its window is free: one request for
        # several chunks, rather than one small envelope per chunk that arrives
        batch = max(1, self.window // 4)
        active = [
            (peer, h)
            for peer, h in self.holders.items()
            if h.resting_until <= now
            and (not h.inflight or h.window - len(h.inflight) >= batch)
            and peer not in unreachable
        ]
        picked: dict[bytes, list[int]] = {peer: [] for peer, _ in active}
        # one chunk per holder per round, so holders share the file evenly
        while active and self.queue:
            progress = False
            for peer, holder in list(active):
                if len(holder.inflight) >= holder.window:
                    active.remove((peer, holder))
                    continue
                index = self._take(holder)
                if index is None:
                    active.remove((peer, holder))
                    continue
                holder.inflight[index] = (now, now + self.wait(holder))
                picked[peer].append(index)
                progress = True
            if not progress:
                break
        for peer, indices in picked.items():
            if indices:
                asks.append((peer, indices))
        return asks

    def wait(self, holder: Holder) -> float:
        """How long `holder` has to answer a chunk asked of it now."""
        if holder.srtt is None:
            return self.timeout
        return min(self.timeout, max(MIN_WAIT, 3 * holder.srtt))

    def next_deadline(self) -> float | None:
        """When a request runs late or a holder's rest ends (None: nothing is waited for)."""
        times = [d for h in self.holders.values() for _, d in h.inflight.values()]
        times += [h.resting_until for h in self.holders.values() if h.resting_until]
        return min(times) if times else None

    def inflight(self) -> int:
        return sum(len(h.inflight) for h in self.holders.values())

    def _take(self, holder: Holder) -> int | None:
        """The rarest queued chunk `holder` holds (the lowest of those), taken off the queue."""
        if self.copies:  # some holders are partial: rarity differs from chunk to chunk
            queued = set(self.queue)
            if holder.held is not None:
                queued &= holder.held
            if not queued:
                return None
            copies = self.copies
            index = min(queued, key=lambda i: (copies.get(i, 0), i))
            self.queue.remove(index)
            return index
        # every holder whole: the first queued chunk, in order
        for position, index in enumerate(self.queue):
            if holder.holds(index):
                del self.queue[position]
                return index
            if position > 4 * self.window:  # a partial holder: do not scan the whole queue
                break
        else:
            return None
        assert holder.held is not None  # a whole holder holds the queue's first chunk
        # the lowest queued chunk it holds, from the sets (C speed) rather than the queue
        ready = holder.held & self.missing
        ready.difference_update(i for h in self.holders.values() for i in h.inflight)
        if not ready:
            return None
        index = min(ready)
        if index not in self.queue:
            return None
        self.queue.remove(index)
        return index

    def _expire(self, now: float) -> None:
        for holder in self.holders.values():
            late = {i: d for i, (_, d) in holder.inflight.items() if d <= now}
            if late:
                for index in late:
                    del holder.inflight[index]
                holder.timeouts += len(late)
                self.timeouts += len(late)
                self._requeue(late)
            if holder.resting_until and holder.resting_until <= now:
                holder.resting_until = 0.0

    def _requeue(self, indices: dict[int, float]) -> None:
        for index in sorted(indices, reverse=True):
            if index in self.missing and index not in self.queue:
                self.queue.appendleft(index)
