"""When the garbage collector makes its full passes while the UI runs: in a pause of the input.

CPython starts a full collection (a walk of every object it tracks) when enough
younger collections have run, wherever the program is: in the middle of a
keystroke that is a pause of several milliseconds, tens on a busy machine,
between the key and the screen showing it. While the UI runs, the app turns
those automatic passes off and makes them itself on a timer, when no input
came for a moment, or when one has been pending too long however busy the
user is. This module only decides when; the app calls the collector.
"""

from __future__ import annotations

#: seconds without input before a pending full pass runs
QUIET = 1.0
#: a pending full pass runs once this many seconds passed since the last one, input or not
OVERDUE = 30.0
#: collections of the middle generation since the last full pass that make one pending
#: (CPython's own default threshold for the oldest generation)
PENDING = 10
#: the oldest generation's threshold while the app makes the full passes: never reached
NEVER = 2**30


class IdleCollector:
    """Decides when to make a full collection: fed the input's times, asked on a timer."""

    def __init__(self, now: float) -> None:
        self._input = now
        self._collected = now

    def input(self, now: float) -> None:
        """An input event (a key, the mouse) came at `now`."""
        self._input = now

    def due(self, now: float, younger: int) -> bool:
        """Whether to collect now; `younger`: collections of the middle generation since
        the last full one (``gc.get_count()[2]``)."""
        if younger < PENDING:
            return False
        return now - self._input >= QUIET or now - self._collected >= OVERDUE

    def collected(self, now: float) -> None:
        """A full collection was made at `now`."""
        self._collected = now
