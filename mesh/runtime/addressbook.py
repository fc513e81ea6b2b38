"""Signed address records: ours, passed to every new neighbour, and the ones peers published.

An ADDRESS envelope carries up to four websocket URLs a peer can be dialed at,
signed by that peer. A node sends its own (renewed hourly) and the ones it
holds to each new neighbour, one link further each, within the record's hop
limit (peer exchange); it keeps the newest record per peer, a bounded number
of them, for a day. With ``auto_connect`` on, the node dials peers from here.

The record is the msgpack map ``{"addrs": [url, ...], "name": str, ...}``; ``name``
(the peer's own display name, at most :data:`MAX_ANNOUNCED_NAME` characters) is
optional, so records without it, from older nodes, still decode, and a record
with an unusable name keeps its addresses (:func:`announced_name` cleans it).
The layers above add their own fields (:attr:`AddressBook.extra`: the chat
layer's signed prekey, ``pk``); a peer with nothing to dial still publishes a
record for them, with no addresses.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from mesh.errors import MeshError
from mesh.routing.router import Router
from mesh.wire.address import PeerAddress
from mesh.wire.envelope import Envelope, EnvelopeType
from mesh.wire.identity import encode_peer_id

#: how far our address record travels, and how often it is re-signed
ADDRESS_HOP_LIMIT = 3
ADDRESS_RECORD_RENEW = 3600.0
#: the longest display name a record carries (longer ones are cut)
MAX_ANNOUNCED_NAME = 64


def clean_name(text: str) -> str:
    """A display name fit to show: control and format characters (newlines, escapes,
    bidi overrides) removed, whitespace runs made one space, at most MAX_ANNOUNCED_NAME
    characters."""
    spaced = "".join(" " if c.isspace() else c for c in text)  # a newline parts words
    kept = "".join(c for c in spaced if unicodedata.category(c)[0] != "C")
    return " ".join(kept.split())[:MAX_ANNOUNCED_NAME]


def announced_name(envelope: Envelope) -> str | None:
    """The display name a peer announced in its ADDRESS record, cleaned; None if it named none
    (or the record is malformed)."""
    try:
        record = msgpack.unpackb(envelope.payload)
        name = record.get("name") if isinstance(record, dict) else None
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(name, str):
        return None
    return clean_name(name) or None


class AddressBook:
    """The newest address record of each peer we heard of, and our own."""

    def __init__(
        self,
        router: Router,
        clock: Callable[[], float],
        *,
        max_records: int,
        ttl: float,
        name: str = "",
    ) -> None:
        self.router = router
        #: our own display name, announced in our record
        self.name = clean_name(name)
        self.clock = clock
        self.max_records = max_records
        self.ttl = ttl
        self._records: dict[bytes, Envelope] = {}
        self._own: Envelope | None = None
        #: fields the layers above publish in our record (called at each renewal check)
        self.extra: Callable[[], dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[bytes]:
        """The peers whose records we hold."""
        return iter(self._records)

    def record(self, peer: bytes) -> Envelope | None:
        return self._records.get(peer)

    def store(self, envelope: Envelope) -> None:
        """Keep a delivered ADDRESS envelope if it is well formed and newer than the one held."""
        try:
            record = msgpack.unpackb(envelope.payload)
            addrs = [a for a in record["addrs"] if isinstance(a, str)][:4]
        except (ValueError, KeyError, TypeError, AttributeError, msgpack.UnpackException):
            self.router.count("dropped_bad_address_record")
            return
        if not addrs and len(record) < 2:  # neither somewhere to dial nor anything else
            self.router.count("dropped_bad_address_record")
            return
        current = self._records.get(envelope.author)
        if current is not None and current.timestamp_ms >= envelope.timestamp_ms:
            return
        if current is None and len(self._records) >= self.max_records:
            oldest = min(self._records.values(), key=lambda e: e.timestamp_ms)
            del self._records[oldest.author]
        self._records[envelope.author] = envelope

    def expire(self, now: float) -> None:
        """Forget the records older than the time to live."""
        limit = (now - self.ttl) * 1000
        for peer in [p for p, e in self._records.items() if e.timestamp_ms < limit]:
            del self._records[peer]

    def name_of(self, peer: bytes) -> str | None:
        """The display name a peer announced in the record we hold of it, if any."""
        record = self._records.get(peer)
        return announced_name(record) if record is not None else None

    def address_of(self, peer: bytes) -> PeerAddress | None:
        """The dialable address a peer published in its signed record, if any."""
        record = self._records.get(peer)
        if record is None:
            return None
        for url in msgpack.unpackb(record.payload)["addrs"]:
            with contextlib.suppress(MeshError, TypeError):
                return PeerAddress.parse(f"{url}#{encode_peer_id(peer)}")
        return None

    def own(self, urls: list[str]) -> Envelope | None:
        """Our signed address record (the first four of `urls`: what others can dial us
        at, and the fields of :attr:`extra`), renewed hourly or when its fields change;
        None when there is nothing to publish."""
        urls = [u for u in urls if not u.startswith(("ws://0.0.0.0:", "ws://[::]:"))][:4]
        fields: dict[str, Any] = {"addrs": urls}
        if self.name:
            fields["name"] = self.name
        if self.extra is not None:
            fields.update(self.extra())
        if not urls and len(fields) < 2:
            return None
        now = self.clock()
        record = self._own
        if (
            record is None
            or now - record.timestamp_ms / 1000 > ADDRESS_RECORD_RENEW
            or msgpack.unpackb(record.payload) != fields
        ):
            record = self._own = self.router.make(
                EnvelopeType.ADDRESS,
                now,
                payload=msgpack.packb(fields),
                hop_limit=ADDRESS_HOP_LIMIT,
            )
        return record

    def exchange(self, peer: bytes, urls: list[str]) -> list[Envelope]:
        """What a new neighbour `peer` gets: our own record (of `urls`), then the ones we
        hold of others."""
        own = self.own(urls)
        records = [own] if own is not None else []
        for author, record in self._records.items():
            # passed on one more link, as the router would have (within the hop limit)
            if author != peer and record.hops + 2 <= record.hop_limit:
                records.append(record.with_hops(record.hops + 1))
        return records

    def candidates(self, linked: set[bytes], dialing: Callable[[bytes], bool]) -> list[bytes]:
        """Peers to dial: held records of peers not linked, not dialed and not banned."""
        now = self.clock()
        return [
            peer
            for peer in self._records
            if peer not in linked
            and not dialing(peer)
            and not self.router.is_banned(peer, now)
            and self.address_of(peer) is not None
        ]

    def status(self) -> dict[str, Any]:
        return {"size": len(self._records), "bound": self.max_records}
