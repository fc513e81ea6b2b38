"""Store-and-forward: envelopes a node keeps for peers it cannot reach now.

Every node keeps a copy of each stored-type envelope it relays for a peer that
is not its neighbour (the router says so with a ``Keep`` action). When a link
to that peer comes up, the node hands the copies over. A signed receipt from
the destination, passing through or handed over, deletes what it
acknowledges. Quotas bound the mailbox per destination and in all, and copies
expire after `max_age`. Kept in the home's database, so they survive restarts.

Mail for this node's contacts is never evicted to make room for strangers'
traffic: mail for anyone else shares a stranger pool (``stranger_bytes``,
charged as in mesh/storage/pool.py), and when it is over, the author holding most of
it loses its oldest mail first. Mail for a contact that finds the mailbox
full evicts strangers' mail before any contact's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mesh.storage.pool import ROW_OVERHEAD, StrangerPool
from mesh.storage.store import Store
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import encode_peer_id


@dataclass(frozen=True)
class MailboxLimits:
    per_dest_items: int = 1000
    per_dest_bytes: int = 8 * 1024 * 1024
    total_items: int = 20_000
    total_bytes: int = 128 * 1024 * 1024
    #: mail for peers who are not contacts, all together (entries charged ROW_OVERHEAD more)
    stranger_bytes: int = 32 * 1024 * 1024
    max_age: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        smallest = min(
            self.per_dest_items,
            self.per_dest_bytes,
            self.total_items,
            self.total_bytes,
            self.stranger_bytes,
        )
        if smallest < 1:
            raise ValueError("mailbox limits must be positive")


#: rows one step of a hand-over reads at most (the node yields to its loop between)
HANDOVER_PAGE_ROWS = 256
#: seconds after a hand-over within which the same peer is handed only newer mail
HANDOVER_REPEAT = 30.0
#: peers whose last hand-over is remembered at most
MAX_HANDED_PEERS = 1024


class Mailbox:
    """The mailbox in the home's database; `counters` names every refusal.

    The quotas are checked against running totals (per destination and in all)
    held in memory, loaded with one query on first use and kept in step with
    every insert and delete, so keeping an envelope costs a few indexed
    statements whatever the mailbox holds. :meth:`keep_many` keeps a burst of
    envelopes in one transaction.
    """

    def __init__(
        self,
        store: Store,
        limits: MailboxLimits | None = None,
        is_contact: Callable[[str], bool] | None = None,
    ) -> None:
        """`is_contact(peer_id)` says whose mail is kept apart from the stranger pool
        (without it, everyone's mail is a stranger's)."""
        self.store = store
        self.limits = limits or MailboxLimits()
        self.is_contact = is_contact or (lambda _peer: False)
        self._pool: StrangerPool | None = None  # read from the database on first use
        self.counters: dict[str, int] = {}
        self._per_dest: dict[str, list[int]] | None = None  # dest -> [items, bytes]
        self._total = [0, 0]
        #: dest -> [when, (stored_at, rowid) of the last envelope handed over]
        self._handed: dict[str, list[Any]] = {}

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _totals(self) -> dict[str, list[int]]:
        if self._per_dest is None:
            rows = self.store.query(
                "SELECT dest, COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM mailbox GROUP BY dest"
            )
            self._per_dest = {row["dest"]: [row["n"], row["b"]] for row in rows}
            self._total = [sum(r["n"] for r in rows), sum(r["b"] for r in rows)]
        return self._per_dest

    def _forget(self, dest: str, size: int, author: str | None = None, stranger: int = 0) -> None:
        """Account for one row of `dest` deleted (a stranger's mail leaves the pool too)."""
        if stranger and self._pool is not None:
            self._pool.remove(str(author), size + ROW_OVERHEAD)
        totals = self._totals()
        mine = totals.get(dest)
        if mine is not None:
            mine[0] -= 1
            mine[1] -= size
            if mine[0] <= 0:
                del totals[dest]
        self._total[0] -= 1
        self._total[1] -= size

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A transaction; if it fails, the totals are counted again from what was committed."""
        try:
            with self.store.atomic():
                yield
        except BaseException:
            self._reload()
            raise

    def _reload(self) -> None:
        """Count again from the database (after deletes whose sizes we did not read)."""
        self._per_dest = None
        self._pool = None

    def _stranger_pool(self) -> StrangerPool:
        if self._pool is None:
            rows = self.store.query(
                "SELECT author, SUM(size) AS b, COUNT(*) AS n FROM mailbox WHERE stranger = 1"
                " GROUP BY author"
            )
            self._pool = StrangerPool(
                self.limits.stranger_bytes,
                {str(r["author"]): r["b"] + r["n"] * ROW_OVERHEAD for r in rows},
            )
        return self._pool

    def keep(self, envelope: Envelope, now: float, store: bool = True) -> None:
        """Keep a copy for its destination, within the quotas (oldest evicted when full).

        A receipt passing through also deletes the copies it acknowledges.
        """
        self.keep_many([(envelope, store)], now)

    def keep_many(self, items: list[tuple[Envelope, bool]], now: float) -> None:
        """:meth:`keep` for each (envelope, store) pair, all in one transaction."""
        kept = 0
        with self._transaction():
            for envelope, store in items:
                if envelope.type == EnvelopeType.RECEIPT:
                    self._acknowledge(envelope.author, receipt_ids(envelope.payload))
                if store and self._keep_one(envelope, now):
                    kept += 1
        if kept:
            self._count("mailbox_kept", kept)

    def _keep_one(self, envelope: Envelope, now: float) -> bool:
        env_id = _id(envelope)
        if self.store.query("SELECT 1 FROM mailbox WHERE env_id = ?", (env_id,)):
            return False
        data = envelope.encode()
        limits = self.limits
        # an envelope no quota can hold is refused (evicting could never make room for it)
        if len(data) > min(limits.per_dest_bytes, limits.total_bytes):
            self._count("mailbox_refused_size")
            return False
        dest = encode_peer_id(envelope.dest)
        author = encode_peer_id(envelope.author)
        stranger = not self.is_contact(dest)
        totals = self._totals()
        while dest in totals and (
            totals[dest][0] >= limits.per_dest_items
            or totals[dest][1] + len(data) > limits.per_dest_bytes
        ):
            if not self._evict_oldest("dest = ?", (dest,)):
                break
            self._count("mailbox_evicted_dest_quota")
        if stranger:
            if len(data) + ROW_OVERHEAD > limits.stranger_bytes:
                self._count("mailbox_refused_size")
                return False
            pool = self._stranger_pool()
            while pool.total + len(data) + ROW_OVERHEAD > pool.bound:
                heaviest = pool.heaviest()
                if heaviest is None or not self._evict_oldest(
                    "stranger = 1 AND author = ?", (heaviest,)
                ):
                    break
                self._count("mailbox_evicted_stranger_pool")
        while (
            self._total[0] >= limits.total_items or self._total[1] + len(data) > limits.total_bytes
        ):
            # strangers' mail goes first; a stranger's never evicts a contact's
            if not self._evict_oldest("stranger = 1", ()) and (
                stranger or not self._evict_oldest("1", ())
            ):
                break
            self._count("mailbox_evicted_total_quota")
        if self._total[0] >= limits.total_items or self._total[1] + len(data) > limits.total_bytes:
            self._count("mailbox_refused_full")
            return False
        self.store.execute(
            "INSERT INTO mailbox (env_id, dest, envelope, stored_at, size, author, stranger)"
            " VALUES (?,?,?,?,?,?,?)",
            (env_id, dest, data, now, len(data), author, int(stranger)),
        )
        mine = totals.setdefault(dest, [0, 0])
        mine[0] += 1
        mine[1] += len(data)
        self._total[0] += 1
        self._total[1] += len(data)
        if stranger:
            self._stranger_pool().add(author, len(data) + ROW_OVERHEAD)
        return True

    def _evict_oldest(self, where: str, params: tuple[Any, ...]) -> bool:
        rows = self.store.query(
            f"SELECT env_id, dest, size, author, stranger FROM mailbox WHERE {where}"
            " ORDER BY stored_at LIMIT 1",
            params,
        )
        if not rows:
            if where == "1":
                self._reload()  # the totals disagree with the table: count again
            return False
        self.store.execute("DELETE FROM mailbox WHERE env_id = ?", (rows[0]["env_id"],))
        row = rows[0]
        self._forget(row["dest"], row["size"], row["author"], row["stranger"])
        return True

    def handover(self, peer: bytes) -> list[Envelope]:
        """The kept envelopes addressed to `peer`, oldest first (they stay until receipted).

        All of :meth:`handover_pages` at once, with no memory of earlier hand-overs.
        """
        return [
            Envelope.decode(data)
            for page in self._handover(encode_peer_id(peer), (float("-inf"), 0), None)
            for data in page
        ]

    def handover_pages(
        self, peer: bytes, now: float, page_rows: int = HANDOVER_PAGE_ROWS
    ) -> Iterator[list[bytes]]:
        """The kept envelopes (encoded) addressed to `peer`, oldest first, in pages.

        A hand-over to the same peer less than HANDOVER_REPEAT seconds after the
        last one starts where that one ended: a peer that reconnects again and
        again is not handed the same mail each time (its senders retry).
        """
        dest = encode_peer_id(peer)
        last = self._handed.pop(dest, None)
        cursor = last[1] if last is not None and now - last[0] < HANDOVER_REPEAT else None
        if cursor is not None:
            self._count("mailbox_handover_resumed")
        while len(self._handed) >= MAX_HANDED_PEERS:
            del self._handed[next(iter(self._handed))]
        mark = [now, cursor or (float("-inf"), 0)]
        self._handed[dest] = mark
        return self._handover(dest, cursor or (float("-inf"), 0), mark, page_rows)

    def _handover(
        self,
        dest: str,
        cursor: tuple[float, int],
        mark: list[Any] | None,
        page_rows: int = HANDOVER_PAGE_ROWS,
    ) -> Iterator[list[bytes]]:
        stored_at, rowid = cursor
        while True:
            rows = self.store.query(
                "SELECT rowid, envelope, size, stored_at, author, stranger FROM mailbox"
                " WHERE dest = ? AND"
                " (stored_at > ? OR (stored_at = ? AND rowid > ?))"
                " ORDER BY stored_at, rowid LIMIT ?",
                (dest, stored_at, stored_at, rowid, page_rows),
            )
            if not rows:
                return
            stored_at, rowid = rows[-1]["stored_at"], rows[-1]["rowid"]
            if mark is not None:
                mark[1] = (stored_at, rowid)
            self._count("mailbox_handed_over", len(rows))
            # receipts are never receipted themselves: handed over once is done (a lost one
            # only makes the sender resend, and the recipient receipts again)
            receipts = [row for row in rows if row["envelope"][2] == EnvelopeType.RECEIPT]
            if receipts:
                with self._transaction():
                    for row in receipts:
                        self.store.execute("DELETE FROM mailbox WHERE rowid = ?", (row["rowid"],))
                        self._forget(dest, row["size"], row["author"], row["stranger"])
            yield [row["envelope"] for row in rows]

    def acknowledge(self, dest: bytes, env_ids: list[bytes]) -> None:
        """`dest` receipted these envelopes: the copies kept for it are done."""
        with self._transaction():
            self._acknowledge(dest, env_ids)

    def _acknowledge(self, dest: bytes, env_ids: list[bytes]) -> None:
        peer = encode_peer_id(dest)
        for env_id in env_ids:
            rows = self.store.query(
                "SELECT size, author, stranger FROM mailbox WHERE env_id = ? AND dest = ?",
                (env_id.hex(), peer),
            )
            if rows:
                self.store.execute("DELETE FROM mailbox WHERE env_id = ?", (env_id.hex(),))
                self._forget(peer, rows[0]["size"], rows[0]["author"], rows[0]["stranger"])

    def expire(self, now: float) -> None:
        removed = self.store.execute(
            "DELETE FROM mailbox WHERE stored_at < ?", (now - self.limits.max_age,)
        )
        if removed:
            self._count("mailbox_expired", removed)
            self._reload()

    def status(self) -> dict[str, Any]:
        self._totals()
        return {
            "size": self._total[0],
            "bound": self.limits.total_items,
            "bytes": self._total[1],
            "bytes_bound": self.limits.total_bytes,
            "stranger_bytes": self._stranger_pool().total,
            "stranger_bytes_bound": self.limits.stranger_bytes,
        }


def receipt_ids(payload: bytes) -> list[bytes]:
    """The envelope ids a receipt payload names (whole 32-byte ids only)."""
    return [payload[i : i + 32] for i in range(0, len(payload) - len(payload) % 32, 32)]


def _id(envelope: Envelope) -> str:
    return envelope.message_id.hex()
