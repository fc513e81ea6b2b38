"""The stranger pool: the bytes of room logs kept for rooms this node is not a member of.

Every node keeps the room envelopes it relays, so that members who were away
can catch up from it; anyone can make up room ids, though. The logs of rooms
this node is a member of are bounded on their own (``member_bytes``) and are
never evicted to make room for anyone else's; all other rooms share one pool
of ``stranger_bytes``. :class:`StrangerPool` tallies the pool per author and
names the author holding most when it is over: that author's oldest entries
go first, so one flooding identity evicts its own traffic before anyone
else's. Each entry is charged its envelope plus ROW_OVERHEAD, roughly what a
row costs on disk beyond the envelope (ids, keys, the indexes), so that the
pool bounds the database's growth and not only the envelopes' bytes.
"""

from __future__ import annotations

#: bytes an entry costs on disk beyond its envelope (room, author and envelope ids, indexes)
ROW_OVERHEAD = 320


class StrangerPool:
    """Bytes held per author in strangers' rooms, against one bound."""

    def __init__(self, bound: int, by_author: dict[str, int] | None = None) -> None:
        self.bound = bound
        self.by_author: dict[str, int] = dict(by_author or {})
        self.total = sum(self.by_author.values())

    def add(self, author: str, cost: int) -> None:
        self.by_author[author] = self.by_author.get(author, 0) + cost
        self.total += cost

    def remove(self, author: str, cost: int) -> None:
        left = self.by_author.get(author, 0) - cost
        if left > 0:
            self.by_author[author] = left
        else:
            self.by_author.pop(author, None)
        self.total -= cost

    def excess(self) -> int:
        """Bytes over the bound (0 when within)."""
        return max(0, self.total - self.bound)

    def heaviest(self) -> str | None:
        """The author holding most of the pool (None when it is empty)."""
        if not self.by_author:
            return None
        return max(self.by_author, key=self.by_author.__getitem__)
