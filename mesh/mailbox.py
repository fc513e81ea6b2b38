"""Store-and-forward: envelopes a node keeps for peers it cannot reach now.

Every node keeps a copy of each stored-type envelope it relays for a peer that
is not its neighbour (the router says so with a ``Keep`` action). When a link
to that peer comes up, the node hands the copies over. A signed receipt from
the destination, passing through or handed over, deletes what it
acknowledges. Quotas bound the mailbox per destination and in all, and copies
expire after `max_age`. Kept in the home's database, so they survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.envelope import Envelope, EnvelopeType
from mesh.identity import encode_peer_id
from mesh.store import Store


@dataclass(frozen=True)
class MailboxLimits:
    per_dest_items: int = 1000
    per_dest_bytes: int = 8 * 1024 * 1024
    total_items: int = 20_000
    total_bytes: int = 128 * 1024 * 1024
    max_age: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if min(self.per_dest_items, self.per_dest_bytes, self.total_items, self.total_bytes) < 1:
            raise ValueError("mailbox limits must be positive")


class Mailbox:
    """The mailbox in the home's database; `counters` names every refusal."""

    def __init__(self, store: Store, limits: MailboxLimits | None = None) -> None:
        self.store = store
        self.limits = limits or MailboxLimits()
        self.counters: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def keep(self, envelope: Envelope, now: float, store: bool = True) -> None:
        """Keep a copy for its destination, within the quotas (oldest evicted when full).

        A receipt passing through also deletes the copies it acknowledges.
        """
        if envelope.type == EnvelopeType.RECEIPT:
            self.acknowledge(envelope.author, receipt_ids(envelope.payload))
        if not store:
            return
        dest = encode_peer_id(envelope.dest)
        data = envelope.encode()
        limits = self.limits
        with self.store.atomic():
            if self.store.query("SELECT 1 FROM mailbox WHERE env_id = ?", (_id(envelope),)):
                return
            mine = self.store.query(
                "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM mailbox WHERE dest = ?",
                (dest,),
            )[0]
            # an envelope no quota can hold is refused (evicting could never make room for it)
            if len(data) > min(limits.per_dest_bytes, limits.total_bytes):
                self._count("mailbox_refused_size")
                return
            while (
                mine["n"] >= limits.per_dest_items or mine["b"] + len(data) > limits.per_dest_bytes
            ):
                mine = self._evict_oldest("dest = ?", (dest,), mine)
                self._count("mailbox_evicted_dest_quota")
            total = self.store.query(
                "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM mailbox"
            )[0]
            while total["n"] >= limits.total_items or total["b"] + len(data) > limits.total_bytes:
                total = self._evict_oldest("1", (), total)
                self._count("mailbox_evicted_total_quota")
            self.store.execute(
                "INSERT INTO mailbox (env_id, dest, envelope, stored_at, size) VALUES (?,?,?,?,?)",
                (_id(envelope), dest, data, now, len(data)),
            )
        self._count("mailbox_kept")

    def _evict_oldest(
        self, where: str, params: tuple[Any, ...], totals: dict[str, Any]
    ) -> dict[str, Any]:
        rows = self.store.query(
            f"SELECT env_id, size FROM mailbox WHERE {where} ORDER BY stored_at LIMIT 1", params
        )
        if not rows:
            return {"n": 0, "b": 0}
        self.store.execute("DELETE FROM mailbox WHERE env_id = ?", (rows[0]["env_id"],))
        return {"n": totals["n"] - 1, "b": totals["b"] - rows[0]["size"]}

    def handover(self, peer: bytes) -> list[Envelope]:
        """The kept envelopes addressed to `peer`, oldest first (they stay until receipted)."""
        rows = self.store.query(
            "SELECT envelope FROM mailbox WHERE dest = ? ORDER BY stored_at",
            (encode_peer_id(peer),),
        )
        self.counters["mailbox_handed_over"] = self.counters.get("mailbox_handed_over", 0) + len(
            rows
        )
        envelopes = [Envelope.decode(row["envelope"]) for row in rows]
        # receipts are never receipted themselves: handed over once is done (a lost one
        # only makes the sender resend, and the recipient receipts again)
        with self.store.atomic():
            for envelope in envelopes:
                if envelope.type == EnvelopeType.RECEIPT:
                    self.store.execute("DELETE FROM mailbox WHERE env_id = ?", (_id(envelope),))
        return envelopes

    def acknowledge(self, dest: bytes, env_ids: list[bytes]) -> None:
        """`dest` receipted these envelopes: the copies kept for it are done."""
        peer = encode_peer_id(dest)
        with self.store.atomic():
            for env_id in env_ids:
                self.store.execute(
                    "DELETE FROM mailbox WHERE env_id = ? AND dest = ?", (env_id.hex(), peer)
                )

    def expire(self, now: float) -> None:
        removed = self.store.execute(
            "DELETE FROM mailbox WHERE stored_at < ?", (now - self.limits.max_age,)
        )
        if removed:
            self.counters["mailbox_expired"] = self.counters.get("mailbox_expired", 0) + removed

    def status(self) -> dict[str, Any]:
        row = self.store.query("SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM mailbox")[0]
        return {
            "size": row["n"],
            "bound": self.limits.total_items,
            "bytes": row["b"],
            "bytes_bound": self.limits.total_bytes,
        }


def receipt_ids(payload: bytes) -> list[bytes]:
    """The envelope ids a receipt payload names (whole 32-byte ids only)."""
    return [payload[i : i + 32] for i in range(0, len(payload) - len(payload) % 32, 32)]


def _id(envelope: Envelope) -> str:
    return envelope.message_id.hex()
