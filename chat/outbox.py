"""Reliable delivery: every chat and control item waits in the outbox until its receipt.

An item is one payload for one destination. Each (re)transmission wraps it
in a fresh signed envelope (relays deduplicate envelope ids, so a resend
needs a new one); the ids of all of them map back to the item. CHAT items
due together for a destination that takes bundles go out in BUNDLE envelopes
(mesh/wire/bundle.py): one signature for up to 256 of them, and each keeps
one id for all its tries. From the
third try on the envelope is flagged FLOOD, so a path that swallows traffic
is bypassed; the path to that destination is then suspect for `suspect_ttl`
(every item to it floods from its first try), so one lying relay costs
each later message nothing. Tries back off exponentially with jitter up to `max_delay`, and
all are due again when a link comes up. Items expire after `ttl`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesh.routing.replay import ReplayGuard
from mesh.storage.mailbox import receipt_ids
from mesh.storage.store import Store
from mesh.wire import bundle
from mesh.wire.envelope import FLAG_FLOOD, MAX_PAYLOAD, DestKind, Envelope, EnvelopeType
from mesh.wire.identity import decode_peer_id, encode_peer_id

#: envelope ids one receipt acknowledges at most
MAX_RECEIPT_IDS = 1024


@dataclass(frozen=True)
class RetryPolicy:
    initial_delay: float = 2.0
    max_delay: float = 300.0
    flood_after: int = 2
    ttl: float = 7 * 24 * 3600.0
    suspect_ttl: float = 600.0


#: destinations remembered as having a suspect path, at most
MAX_SUSPECT = 10_000
#: seconds between two sweeps of expired items (each reads the whole outbox)
SWEEP_INTERVAL = 10.0
#: items one flush sends at most (the retry loop flushes again after a full page, once no
#: link holds more than OUTBOX_BACKLOG bytes unsent)
FLUSH_PAGE = 500
OUTBOX_BACKLOG = 1024 * 1024
#: items one statement deletes at most (SQLite's limit on parameters is 32,766)
FORGET_PAGE = 1000


@dataclass(frozen=True)
class Acknowledged:
    """An outbox item its destination receipted."""

    item_id: str
    msg_id: str | None
    conv_id: str | None
    epoch: int | None
    dest: str
    type: int


class Outbox:
    """The outbox of one node; `send` hands signed envelopes to the node."""

    def __init__(
        self,
        store: Store,
        make: Callable[..., Envelope],
        send: Callable[[Envelope], None],
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.make = make
        self.send = send
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.dropped_oversize = 0
        #: whether a destination takes BUNDLE envelopes (it says so in its address record)
        self.takes_bundles: Callable[[bytes], bool] = lambda dest: False
        #: BUNDLE envelopes sent, and the items they carried
        self.bundles_sent = 0
        self.bundled_items = 0
        self.flooded_suspect = 0
        #: dest -> until when its path is suspect (a try had to flood): in memory, bounded
        self._suspect: dict[str, float] = {}
        #: envelopes receipted lately: a replay of one is receipted again once per interval
        self.receipted = ReplayGuard()
        self._next_sweep = float("-inf")
        #: items receipted whose receipts wait to be written down (chat.receipts.Deferred,
        #: then :meth:`forget` deletes them): never sent again
        self.receipted_items: set[str] = set()

    def send_receipt(
        self,
        dest: bytes,
        env_ids: list[bytes],
        now: float,
        flood: bool,
        guarded_by: dict[bytes, bytes] | None = None,
    ) -> int:
        """Receipt envelopes; flooded when the sender had to flood (its path is suspect:
        the receipt's way back may run through the same relay) or the path to it is.
        Return how many were refused as replays.

        An envelope receipted less than REPLAY_INTERVAL ago is not receipted again:
        each replay of a captured message would otherwise cost a signed receipt. An id
        in `guarded_by` is judged by the id it maps to (a bundled item by its bundle)."""
        self.receipted.expire(now)
        guards = guarded_by or {}
        allowed: dict[bytes, bool] = {}
        fresh = []
        for env_id in env_ids:
            key = guards.get(env_id, env_id)
            if key not in allowed:
                allowed[key] = self.receipted.allow(key, now)
            if allowed[key]:
                fresh.append(env_id)
        if self.path_suspect(encode_peer_id(dest), now):
            flood = True
        for start in range(0, len(fresh), MAX_RECEIPT_IDS):
            receipt = self.make(
                EnvelopeType.RECEIPT,
                now,
                dest_kind=DestKind.PEER,
                dest=dest,
                payload=b"".join(fresh[start : start + MAX_RECEIPT_IDS]),
                flags=FLAG_FLOOD if flood else 0,
            )
            self.send(receipt)
        return len(env_ids) - len(fresh)

    def add(
        self,
        item_id: str,
        dest: str,
        type: EnvelopeType,
        payload: bytes,
        now: float,
        *,
        msg_id: str | None = None,
        conv_id: str | None = None,
        epoch: int | None = None,
    ) -> None:
        """Queue an item (inside the caller's transaction); :meth:`flush` sends it."""
        self.store.execute(
            "INSERT OR IGNORE INTO outbox (item_id, msg_id, conv_id, epoch, dest, type, payload,"
            " tries, next_try, expires) VALUES (?,?,?,?,?,?,?,0,?,?)",
            (item_id, msg_id, conv_id, epoch, dest, int(type), payload, now, now + self.policy.ttl),
        )

    def flush(self, now: float) -> int:
        """Transmit every item that is due; drop expired ones. Return how many went out.

        Expired items are deleted at most every SWEEP_INTERVAL: the sweep reads the
        whole outbox, and a flush follows every message sent (with a member away for
        days, tens of thousands of items wait). Until then they are only not sent."""
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            with self.store.atomic():
                # the envelope ids of expired items go too, or they would pile up forever
                self.store.execute(
                    "DELETE FROM outbox_envelopes WHERE item_id IN"
                    " (SELECT item_id FROM outbox WHERE expires <= ?)",
                    (now,),
                )
                self.store.execute("DELETE FROM outbox WHERE expires <= ?", (now,))
        due = self.store.query(
            "SELECT * FROM outbox WHERE next_try <= ? AND expires > ?"
            " ORDER BY next_try, rowid LIMIT ?",
            (now, now, FLUSH_PAGE),
        )
        # one transaction for the page, its rows written by two statements prepared
        # once: a member back after days has thousands waiting
        made: list[Envelope] = []
        ids: list[tuple[str, str]] = []  # (envelope or bundled item id, item id)
        dests: dict[str, bytes] = {}
        with self.store.atomic():
            tried: list[dict[str, Any]] = []
            waiting: list[tuple[float, str]] = []
            bundled: dict[str, list[tuple[dict[str, Any], int]]] = {}
            bundling: dict[str, bool] = {}  # asked once per destination and page
            for item in due:
                if item["item_id"] in self.receipted_items:
                    # receipted, its receipt not written down yet: not sent, and not
                    # due again before that (chat.receipts)
                    waiting.append((now + self.policy.max_delay, item["item_id"]))
                    continue
                flags = self._flags(item, now)
                if flags is None:
                    continue
                tried.append(item)
                dest = str(item["dest"])
                if dest not in dests:
                    dests[dest] = decode_peer_id(dest)
                    bundling[dest] = self.takes_bundles(dests[dest])
                if item["type"] == EnvelopeType.CHAT and bundling[dest]:
                    bundled.setdefault(dest, []).append((item, flags))
                    continue
                envelope = self._envelope(item["type"], now, dests[dest], item["payload"], flags)
                made.append(envelope)
                ids.append((envelope.message_id.hex(), item["item_id"]))
            for dest, items in bundled.items():
                for group in _groups(items):
                    made.append(self._bundle(group, now, dests[dest], ids))
            self.store.executemany(
                "INSERT OR IGNORE INTO outbox_envelopes (env_id, item_id) VALUES (?, ?)", ids
            )
            self.store.executemany(
                "UPDATE outbox SET tries = ?, next_try = ? WHERE item_id = ?",
                [(item["tries"] + 1, self._next_try(item, now), item["item_id"]) for item in tried],
            )
            self.store.executemany("UPDATE outbox SET next_try = ? WHERE item_id = ?", waiting)
        for envelope in made:
            self.send(envelope)
        return len(due)

    def _bundle(
        self,
        group: list[tuple[dict[str, Any], int]],
        now: float,
        dest: bytes,
        ids: list[tuple[str, str]],
    ) -> Envelope:
        """One try of the items of `group` (all to `dest`): a CHAT envelope for one item,
        a BUNDLE for more; the ids a receipt will name for them go into `ids`."""
        flags = max(flags for _, flags in group)  # FLOOD when any of them floods
        if len(group) == 1:
            item = group[0][0]
            envelope = self._envelope(EnvelopeType.CHAT, now, dest, item["payload"], flags)
            ids.append((envelope.message_id.hex(), item["item_id"]))
            return envelope
        payloads = [item["payload"] for item, _ in group]
        envelope = self._envelope(EnvelopeType.BUNDLE, now, dest, bundle.pack(payloads), flags)
        self.bundles_sent += 1
        self.bundled_items += len(group)
        for item, _ in group:
            # the same id on every try: recorded once per item, not once per try
            carried = bundle.item_id(envelope.author, dest, item["payload"])
            ids.append((carried.hex(), item["item_id"]))
        return envelope

    def make_all_due(self, now: float, dest: str | None = None) -> None:
        """A link came up: try everything (or everything for `dest`) again now, in the
        order it was queued. Items sealed on a pairwise session (key shares, control
        traffic) then arrive in the session's order: the receiver opens a message at
        most MAX_SKIP ahead of the last one, so a backlog sent in back-off order would
        be refused in part."""
        if dest is None:
            self.store.execute("UPDATE outbox SET next_try = ? WHERE next_try <> ?", (now, now))
        else:
            self.store.execute(
                "UPDATE outbox SET next_try = ? WHERE dest = ? AND next_try <> ?", (now, dest, now)
            )

    def _flags(self, item: dict[str, Any], now: float) -> int | None:
        """The flags of the next try of `item`; None for an item that can never go out
        (deleted here, inside the caller's transaction)."""
        tries = int(item["tries"])
        dest = str(item["dest"])
        flags = 0
        if tries >= self.policy.flood_after:
            flags = FLAG_FLOOD
            self._suspect_path(dest, now)
        elif self.path_suspect(dest, now):
            flags = FLAG_FLOOD
            self.flooded_suspect += 1
        if len(item["payload"]) > MAX_PAYLOAD:
            # it can never go out: drop it rather than block everything queued behind it
            self.store.execute("DELETE FROM outbox WHERE item_id = ?", (item["item_id"],))
            self.dropped_oversize += 1
            return None
        return flags

    def _envelope(self, type: int, now: float, dest: bytes, payload: bytes, flags: int) -> Envelope:
        return self.make(
            type, now, dest_kind=DestKind.PEER, dest=dest, payload=payload, flags=flags
        )

    def _next_try(self, item: dict[str, Any], now: float) -> float:
        """When to try `item` again after this try: backing off, with jitter."""
        delay = min(self.policy.max_delay, self.policy.initial_delay * 2 ** int(item["tries"]))
        return float(now + delay * self.rng.uniform(0.8, 1.2))

    def path_suspect(self, dest: str, now: float) -> bool:
        """Whether an earlier item to `dest` went unreceipted until it flooded, lately."""
        until = self._suspect.get(dest)
        return until is not None and until > now

    def _suspect_path(self, dest: str, now: float) -> None:
        self._suspect.pop(dest, None)
        self._suspect[dest] = now + self.policy.suspect_ttl
        while len(self._suspect) > MAX_SUSPECT:
            del self._suspect[next(iter(self._suspect))]  # the oldest entry

    def next_due(self) -> float | None:
        rows = self.store.query("SELECT MIN(next_try) AS t FROM outbox")
        value = rows[0]["t"] if rows else None
        return None if value is None else float(value)

    def acknowledge(self, receipt: Envelope) -> list[Acknowledged]:
        """Apply a receipt: delete the items it acknowledges that were addressed to its
        author (in the receipt's order; a few statements for the whole receipt)."""
        with self.store.atomic():
            done = self.acknowledged_by(receipt)
            self.forget([item.item_id for item in done])
        return done

    def acknowledged_by(self, receipt: Envelope) -> list[Acknowledged]:
        """The items a receipt acknowledges that were addressed to its author, in the
        receipt's order, read and left in place (:meth:`forget` deletes them)."""
        author = encode_peer_id(receipt.author)
        env_ids = [env_id.hex() for env_id in receipt_ids(receipt.payload)[:MAX_RECEIPT_IDS]]
        if not env_ids:
            return []
        marks = ",".join("?" * len(env_ids))
        done: dict[str, Acknowledged] = {}
        rows = self.store.query(  # not the payloads: thousands of them, back after days
            "SELECT e.env_id, o.item_id, o.msg_id, o.conv_id, o.epoch, o.dest, o.type"
            " FROM outbox_envelopes e JOIN outbox o"
            f" ON o.item_id = e.item_id WHERE e.env_id IN ({marks}) AND o.dest = ?",
            (*env_ids, author),
        )
        order = {env_id: i for i, env_id in enumerate(env_ids)}
        for item in sorted(rows, key=lambda row: order[row["env_id"]]):
            done.setdefault(
                item["item_id"],
                Acknowledged(
                    item["item_id"],
                    item["msg_id"],
                    item["conv_id"],
                    item["epoch"],
                    item["dest"],
                    item["type"],
                ),
            )
        return list(done.values())

    def forget(self, item_ids: list[str]) -> None:
        """Delete items and their envelope ids (inside the caller's transaction)."""
        for start in range(0, len(item_ids), FORGET_PAGE):
            items = tuple(item_ids[start : start + FORGET_PAGE])
            marks = ",".join("?" * len(items))
            self.store.execute(f"DELETE FROM outbox WHERE item_id IN ({marks})", items)
            self.store.execute(f"DELETE FROM outbox_envelopes WHERE item_id IN ({marks})", items)
        self.receipted_items.difference_update(item_ids)

    def counters(self) -> dict[str, int]:
        return {
            "outbox_dropped_oversize": self.dropped_oversize,
            "outbox_flooded_suspect": self.flooded_suspect,
            "outbox_bundles_sent": self.bundles_sent,
            "outbox_bundled_items": self.bundled_items,
        }

    def pending_count(self) -> int:
        return int(self.store.query("SELECT COUNT(*) AS n FROM outbox")[0]["n"])


async def links_drained(backlogs: Callable[[], list[int]]) -> None:
    """Wait while a link holds over OUTBOX_BACKLOG unsent bytes (`backlogs` gives each
    link's): pages sent faster than a link drains would be dropped (the transport's
    ``dropped_slow_link``) and their items tried again late."""
    while max(backlogs(), default=0) > OUTBOX_BACKLOG:
        await asyncio.sleep(0.01)


def _groups(items: list[tuple[dict[str, Any], int]]) -> list[list[tuple[dict[str, Any], int]]]:
    """`items` (to one destination, in order) cut into bundles within the bounds."""
    groups: list[list[tuple[dict[str, Any], int]]] = []
    size = bundle.BUNDLE_BYTES  # starts a group at the first item
    for entry in items:
        grows = bundle.packed_size(entry[0]["payload"])
        if size + grows > bundle.BUNDLE_BYTES or len(groups[-1]) >= bundle.MAX_ITEMS:
            groups.append([])
            size = bundle.ARRAY_OVERHEAD
        groups[-1].append(entry)
        size += grows
    return groups
