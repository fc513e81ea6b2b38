"""Pacing room-log inventories, so that a node coming back gets its backlog once, not per link.

On every link-up both ends send an INVENTORY (their per-author sequence
vectors) and each answers the other's with every kept room envelope the other
lacks. A node that comes back on several links at once would so receive its
whole backlog once from every neighbour. :class:`InventoryPacer` decides when
a new link gets our inventory: at once when no answer is awaited, otherwise
when the wait for the answer under way ends. By then the backlog is in, the
inventory says so, and the other neighbours answer only with what the first
one lacked.

Sans-I/O: the node (mesh/runtime/node.py) and the simulator (sim/catchup.py)
call it with their clocks and send what it says.
"""

from __future__ import annotations

#: seconds an inventory's answer is awaited before the next links get theirs
INVENTORY_WAIT = 1.0


class InventoryPacer:
    """Which links get our inventory now, and which wait for an answer under way."""

    def __init__(self, wait: float = INVENTORY_WAIT) -> None:
        self.wait = wait
        self._until = float("-inf")  # no answer awaited after this
        self._queued: list[int] = []

    def link_up(self, link: int, now: float) -> bool:
        """A link came up: True to send it our inventory now, False when it must wait."""
        if now < self._until:
            self._queued.append(link)
            return False
        self._until = now + self.wait
        return True

    def link_down(self, link: int) -> None:
        if link in self._queued:
            self._queued.remove(link)

    def flush(self) -> list[int]:
        """The links that waited: call when the wait is over (:meth:`next_deadline`)."""
        due, self._queued = self._queued, []
        return due

    def next_deadline(self) -> float:
        """When :meth:`due` next has links to give (infinity when none waits)."""
        return self._until if self._queued else float("inf")
