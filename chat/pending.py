"""Messages held back: a room message whose room or key is not known yet waits here.

Bounded (MAX_PENDING envelopes) and expiring (PENDING_TTL); both count what they
drop in the chat's counters. The chat takes a room's held messages back when
the room changes (:meth:`Pending.take`) and tries them again.
"""

from __future__ import annotations

from mesh.storage.store import Store
from mesh.wire.envelope import Envelope

MAX_PENDING = 1000
PENDING_TTL = 24 * 3600.0


class Pending:
    """The held messages in the home's database."""

    def __init__(self, store: Store, counters: dict[str, int]) -> None:
        self.store = store
        self.counters = counters
        #: whether the table is known to be empty (None: not known): then a message taken
        #: in needs no statement to be forgotten, which is every message of a backlog
        self._empty: bool | None = None

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def hold(self, envelope: Envelope, conv_id: str, now: float) -> None:
        count = self.store.query("SELECT COUNT(*) AS n FROM pending")[0]["n"]
        if count >= MAX_PENDING:
            self._count("chat_dropped_pending_full")
            return
        self.store.execute(
            "INSERT OR IGNORE INTO pending (env_id, conv_id, envelope, received_at)"
            " VALUES (?, ?, ?, ?)",
            (envelope.message_id.hex(), conv_id, envelope.encode(), now),
        )
        self._empty = False
        self._count("chat_held")

    def expire(self, now: float) -> None:
        """Held messages whose room or key never came are dropped after a day (counted)."""
        gone = self.store.execute("DELETE FROM pending WHERE received_at < ?", (now - PENDING_TTL,))
        if gone:
            self._empty = None
            self._count("chat_pending_expired", gone)

    def take(self, conv_id: str) -> list[Envelope]:
        """The messages held for a conversation, no longer held (try them again)."""
        taken = []
        for row in self.store.query(
            "SELECT env_id, envelope FROM pending WHERE conv_id = ?", (conv_id,)
        ):
            self.store.execute("DELETE FROM pending WHERE env_id = ?", (row["env_id"],))
            # the id it was held under: a bundled item's is not its header's hash
            taken.append(Envelope.decode(row["envelope"], bytes.fromhex(row["env_id"])))
        if taken:
            self._empty = None
        return taken

    def forget(self, envelope: Envelope) -> None:
        """A held message that was taken in after all."""
        if self._empty is None:
            self._empty = not self.store.query("SELECT 1 FROM pending LIMIT 1")
        if self._empty:
            return
        self.store.execute("DELETE FROM pending WHERE env_id = ?", (envelope.message_id.hex(),))

    def count(self) -> int:
        return int(self.store.query("SELECT COUNT(*) AS n FROM pending")[0]["n"])
