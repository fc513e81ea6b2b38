"""Local repair (``RouterConfig.local_departures``): what a lost path costs stays near the break.

Sans-I/O, owned by :class:`~mesh.routing.paths.PathTable`. Two rules, each with
Babel's feasibility condition in place of sequence numbers: a path is taken back
only from a neighbour that said it was no farther from the destination than we
were (so its path cannot run through us, nor through anyone whose path runs
through us: they are all farther than we were).

- **Departures.** A destination two links away that our neighbour withdraws was
  that neighbour's own neighbour: it left (or that link went down). We drop our
  path but tell nobody: farther nodes keep paths into its neighbourhood, where
  what comes for it is parked until it is back. Taking it back needs a
  neighbour strictly nearer than we were (one next to it), and is not passed on.
- **Transit paths.** A path through a neighbour that went away (or withdrew it)
  with no fallback, whose destination some other neighbour passed us from no
  farther than we are (``Route.near``): we ask those neighbours alone, one
  WITHDRAW frame per link listing every destination we ask it for, and they
  offer their paths back as usual (one TABLE frame per link). The neighbours
  whose paths run through us are not told: they keep sending to us, and we park
  what comes until a feasible path does. If none comes within ``wait`` the
  path is *starved* and withdrawn as before, from us outwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NEVER = float("inf")


class LocalRepair:
    """Departed destinations and paths being repaired among our neighbours."""

    def __init__(self, wait: float, capacity: int, count: Callable[..., None]) -> None:
        self.wait = wait
        self.capacity = capacity
        self._count = count
        #: departed destinations withdrawn here and no farther -> (the distance we had, the
        #: link of the neighbour next to it, which withdrew it)
        self.departed: dict[bytes, tuple[int, int]] = {}
        #: destinations asked of neighbours -> (the distance we had, when they starve)
        self.repairing: dict[bytes, tuple[int, float]] = {}
        self.next_check = NEVER
        #: link -> the destinations to ask its neighbour for (taken by the router)
        self.requests: dict[int, list[bytes]] = {}
        #: departed destinations whose traffic a node near them holds -> until when
        #: (a HELD notice came by): FLOOD-flagged copies follow the path, not every link
        self.held: dict[bytes, float] = {}
        #: (author, destination) told of its held traffic lately -> until when
        self.told: dict[tuple[bytes, bytes], float] = {}

    def __bool__(self) -> bool:
        return bool(self.departed or self.repairing)

    def holds(self, dest: bytes) -> bool:
        """Whether traffic for `dest` waits here, even FLOOD-flagged: nodes behind us kept
        their paths through us."""
        return dest in self.departed or dest in self.repairing

    def is_held(self, dest: bytes, now: float) -> bool:
        """Whether a node near `dest` said it holds traffic for it (a HELD notice)."""
        until = self.held.get(dest) if self.held else None
        return until is not None and until > now

    def note_held(self, dest: bytes, now: float, until: float) -> None:
        """A HELD notice for `dest` came by: its traffic waits near it until `until`."""
        _note(self.held, dest, now, until, self.capacity)

    def tell(self, author: bytes, dest: bytes, now: float, until: float) -> bool:
        """Whether to send `author` a HELD notice for `dest` now (once until `until`)."""
        if self.told.get((author, dest), 0.0) > now:
            return False
        _note(self.told, (author, dest), now, until, self.capacity)
        return True

    def depart(self, dest: bytes, hops: int, link: int) -> None:
        """`dest`, `hops` away, left (the neighbour on `link` says): its withdrawal goes no
        farther than us."""
        departed = self.departed
        departed.pop(dest, None)
        departed[dest] = (hops, link)
        while len(departed) > self.capacity:
            del departed[next(iter(departed))]

    def cut_off(self, link: int) -> list[bytes]:
        """`link` went down: the departed destinations whose neighbour next to them was on it.

        When they come back, the news reaches their neighbours' neighbours, no longer us:
        withdrawn from us outwards after all, as before, and repaired as before.
        """
        if not self.departed:
            return []
        out = [dest for dest, (_, via) in self.departed.items() if via == link]
        for dest in out:
            del self.departed[dest]
        if out:
            self._count("departures_cut_off", len(out))
        return out

    def ask(self, dest: bytes, hops: int, links: list[int], now: float) -> None:
        """Ask the neighbours on `links` (no farther from `dest` than our `hops`) for a path."""
        if len(self.repairing) >= self.capacity and dest not in self.repairing:
            del self.repairing[next(iter(self.repairing))]
        due = now + self.wait
        self.repairing[dest] = (hops, due)
        self.next_check = min(self.next_check, due)
        for link in links:
            self.requests.setdefault(link, []).append(dest)

    def take_requests(self) -> dict[int, list[bytes]]:
        requests, self.requests = self.requests, {}
        return requests

    def feasible(self, dest: bytes, their_hops: int) -> bool | None:
        """Whether a neighbour `their_hops` from `dest` may give us our path back; None when
        `dest` is not ours to repair (any path will do, as before)."""
        departed = self.departed.get(dest)
        if departed is not None:
            return their_hops < departed[0]
        waiting = self.repairing.get(dest)
        if waiting is not None:
            return their_hops <= waiting[0]
        return None

    def found(self, dest: bytes) -> bool:
        """A path to `dest` was learned; True when it was ours to repair."""
        return (
            self.departed.pop(dest, None) is not None or self.repairing.pop(dest, None) is not None
        )

    def starved(self, now: float) -> list[bytes]:
        """The destinations no feasible path came for in time: withdrawn from here on."""
        if now < self.next_check:
            return []
        out = [dest for dest, (_, due) in self.repairing.items() if due <= now]
        for dest in out:
            del self.repairing[dest]
        self.next_check = min((due for _, due in self.repairing.values()), default=NEVER)
        if out:
            self._count("repairs_starved", len(out))
        return out


def _note(marks: dict[Any, float], key: Any, now: float, until: float, capacity: int) -> None:
    """Set `marks[key]` to `until` (the newest last), dropping the oldest past `capacity`
    and those run out (all marks last equally long: the oldest run out first)."""
    marks.pop(key, None)
    marks[key] = until
    while marks and (len(marks) > capacity or next(iter(marks.values())) <= now):
        del marks[next(iter(marks))]
