"""Answering other peers' QUERY and WANT: whole files and the chunks of a fetch under way.

A node serves a file's chunks only to a current member of its conversation,
and only at a bounded rate: :data:`REQUEST_RATE` chunks a second per
requesting peer and :data:`LINK_RATE` per link the chunks leave on (many
requesters behind one neighbour share that neighbour's budget). The chunks
sent also spend the link's total answer budget (mesh/runtime/answers.py),
which its neighbour's inventories and mail hand-overs spend as well: the
bytes sent and the loop time taken; while it is spent the answer is
``busy``, so a neighbour cannot have a file and a room log streamed at full
cost at once. A node
halfway through a fetch serves the chunks it has, with the proofs they came
with, and tells the peers that asked it (its watchers) when it has more: a
HAVE with its bitfield at most every :data:`HAVE_INTERVAL` seconds, and a
HAVE for all once it is complete. So fetchers of one file help each other.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chat.files import wire
from chat.files.holdings import Holdings
from mesh.routing.ratelimit import TokenBucket
from mesh.runtime.answers import LinkBudget

#: chunks a second (and at once) one peer may ask of this node
REQUEST_RATE = 2048.0
REQUEST_BURST = 512.0
#: chunks a second (and at once) this node sends out over one link, all requesters together
LINK_RATE = 4096.0
LINK_BURST = 1024.0
#: requesting peers (and links) whose buckets are remembered
MAX_REQUESTERS = 1024
#: peers told of new chunks of a file being fetched, at most
MAX_WATCHERS = 64
#: seconds between HAVE updates to the watchers of a fetch, at least
HAVE_INTERVAL = 0.5


@dataclass
class ServingConfig:
    """Rates a node serves chunks at (``FilesConfig`` carries them)."""

    request_rate: float = REQUEST_RATE
    request_burst: float = REQUEST_BURST
    link_rate: float = LINK_RATE
    link_burst: float = LINK_BURST


class Buckets:
    """Token buckets by key (a peer, a link), the least recently used forgotten past a bound."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: OrderedDict[Any, TokenBucket] = OrderedDict()

    def take(self, key: Any, now: float, cost: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket.full(self.rate, self.burst, now)
            if len(self._buckets) > MAX_REQUESTERS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, cost)

    def give_back(self, key: Any, cost: float) -> None:
        """Undo a take that another limit then refused."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(bucket.burst, bucket.tokens + cost)


class Server:
    """What this node answers about the files it holds, whole or in part.

    `members(conv_id)` names who may ask; `partial(file_id)` is the chunks kept of
    a file being fetched; `link_to(peer)` is the
    link a reply to `peer` leaves on (None: no path now); `budget(link)` is that
    link's answer budgets (None: none kept); `send(peer, payload)`
    sends a FILE envelope; `count(name, by)` counts in the node's counters;
    `timer` measures the loop time an answer takes (seconds).
    """

    def __init__(
        self,
        holdings: Holdings,
        config: ServingConfig,
        *,
        members: Callable[[str], set[bytes]],
        partial: Callable[[str], set[int]],
        link_to: Callable[[bytes], int | None],
        send: Callable[[bytes, bytes], None],
        count: Callable[[str, int], None],
        budget: Callable[[int], LinkBudget | None] = lambda link: None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.holdings = holdings
        self.budget = budget
        self.timer = timer
        self.members = members
        self.partial = partial
        self.link_to = link_to
        self.send = send
        self.count = count
        self.peers = Buckets(config.request_rate, config.request_burst)
        self.links = Buckets(config.link_rate, config.link_burst)
        #: file id -> peers that asked about it while it was being fetched here
        self.watchers: dict[str, OrderedDict[bytes, None]] = {}
        #: file id -> when its watchers were last told, and whether they are behind
        self._told: dict[str, float] = {}
        self._behind: set[str] = set()

    def _allowed(self, peer: bytes, root: bytes) -> tuple[dict[str, Any] | None, str | None]:
        """The file a peer asks about, or why it gets nothing (None: not known, say nothing)."""
        row = self.holdings.row(root.hex())
        if row is None:
            self.count("files_query_unknown", 1)
            return None, None
        if peer not in self.members(row["conv_id"]):
            self.count("files_refused_not_member", 1)
            return None, "not_member"
        if row["state"] not in ("complete", "fetching"):
            return None, "not_held"
        return row, None

    def _have(self, row: dict[str, Any]) -> wire.Have:
        chunks = self.holdings.descriptor(row).chunks
        held = self.partial(row["file_id"]) if row["state"] == "fetching" else None
        field = None if held is None else wire.bitfield(chunks, held)
        return wire.Have(row["root"], chunks, field)

    def on_query(self, peer: bytes, query: wire.Query) -> None:
        row, reason = self._allowed(peer, query.root)
        if reason is not None:
            self.send(peer, wire.Refuse(query.root, reason).encode())
        elif row is not None:
            if row["state"] == "fetching":
                self._watch(row["file_id"], peer)
            self.send(peer, self._have(row).encode())

    def _watch(self, file_id: str, peer: bytes) -> None:
        watchers = self.watchers.setdefault(file_id, OrderedDict())
        watchers[peer] = None
        watchers.move_to_end(peer)
        if len(watchers) > MAX_WATCHERS:
            watchers.popitem(last=False)

    def on_want(self, peer: bytes, want: wire.Want, now: float) -> None:
        row, reason = self._allowed(peer, want.root)
        if row is None:
            if reason is not None:
                self.send(peer, wire.Refuse(want.root, reason).encode())
            return
        descriptor = self.holdings.descriptor(row)
        indices = want.indices()
        if any(index >= descriptor.chunks for index in indices):
            self.count("files_rejected_malformed", 1)
            return
        link = self.link_to(peer)
        if link is None:
            # no path back now: the chunks would wait in the mesh and arrive after the
            # requester asked again (it asks only where it has a path)
            self.count("files_wants_no_path", 1)
            return
        held = self.partial(row["file_id"]) if row["state"] == "fetching" else None
        if held is not None:
            lacked = [i for i in indices if i not in held]
            indices = [i for i in indices if i in held]
            if lacked:  # asked before our last HAVE reached it: say again what we have
                self.count("files_wants_not_held", len(lacked))
                self.send(peer, self._have(row).encode())
        cost = float(len(indices))
        if not self.peers.take(peer, now, cost):
            self._busy(peer, want, "files_refused_busy")
            return
        if not self.links.take(link, now, cost):
            self.peers.give_back(peer, cost)
            self._busy(peer, want, "files_refused_busy_link")
            return
        budget = self.budget(link)
        if budget is not None and budget.wait_total(now) > 0:
            self.peers.give_back(peer, cost)
            self.links.give_back(link, cost)
            self._busy(peer, want, "files_refused_answer_budget")
            return
        started, sent = self.timer(), 0
        for index in indices:
            if held is None:
                sealed, proof = self.holdings.read_chunk(descriptor, index)
            else:
                sealed, proof = self.holdings.read_part_chunk(descriptor, index)
            payload = wire.Chunk(want.root, index, sealed, tuple(proof)).encode()
            sent += len(payload)
            self.send(peer, payload)
        if budget is not None:
            budget.charge_total(sent, self.timer() - started, now)
        self.count("files_chunks_served", len(indices))
        if held is not None:
            self.count("files_chunks_served_partial", len(indices))

    def _busy(self, peer: bytes, want: wire.Want, counter: str) -> None:
        self.count(counter, 1)
        self.send(peer, wire.Refuse(want.root, "busy").encode())

    def kept_more(self, file_id: str) -> None:
        """A chunk of a file being fetched here was kept: its watchers are behind."""
        if file_id in self.watchers:
            self._behind.add(file_id)

    def tell(self, now: float) -> None:
        """Send the watchers that are behind what this node now holds (rate-bounded)."""
        for file_id in list(self._behind):
            if now - self._told.get(file_id, 0.0) < HAVE_INTERVAL:
                continue
            self._behind.discard(file_id)
            self._told[file_id] = now
            row = self.holdings.row(file_id)
            if row is not None and row["state"] in ("fetching", "complete"):
                self._tell(file_id, self._have(row))
            else:  # dropped meanwhile (evicted): nothing to tell, no one to remember
                self.watchers.pop(file_id, None)
                self._told.pop(file_id, None)

    def next_tell(self) -> float | None:
        """When :meth:`tell` has something to send (None: nothing is behind)."""
        times = [self._told.get(f, 0.0) + HAVE_INTERVAL for f in self._behind]
        return min(times) if times else None

    def completed(self, file_id: str, root: bytes, chunks: int) -> None:
        """A fetch ended with the file whole: its watchers may ask for any chunk now."""
        self._behind.discard(file_id)
        self._told.pop(file_id, None)
        self._tell(file_id, wire.Have(root, chunks, None))
        self.watchers.pop(file_id, None)

    def _tell(self, file_id: str, have: wire.Have) -> None:
        watchers = self.watchers.get(file_id, OrderedDict[bytes, None]())
        payload = have.encode()
        for peer in watchers:
            self.send(peer, payload)
        self.count("files_have_updates_sent", len(watchers))
