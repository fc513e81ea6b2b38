"""The chat's side of BUNDLE envelopes (mesh/wire/bundle.py): who takes them, and taking them.

A node says in its signed address record that it takes bundles (``"bn": 1``);
the outbox bundles CHAT items only for a destination whose record we hold
says so, so a peer that does not know them still gets one CHAT envelope per
item. A bundle received is unpacked into the CHAT envelopes it stands for,
taken in with the rest of its burst; the receipt names each item taken (by
its own id) and the bundle's id, so that a mailbox holding the bundle for us
lets it go. A malformed bundle is refused whole and counted; an item the
chat refuses is counted as any CHAT envelope is, and the others are kept.
"""

from __future__ import annotations

import msgpack

from mesh.errors import EnvelopeError
from mesh.wire import bundle
from mesh.wire.envelope import Envelope

#: the address record's field saying "send me bundles"
FIELD = "bn"


def takes_bundles(record: Envelope | None) -> bool:
    """Whether a peer's signed address record says it takes bundles."""
    if record is None:
        return False
    try:
        fields = msgpack.unpackb(record.payload)
    except (ValueError, TypeError, msgpack.UnpackException):
        return False
    return isinstance(fields, dict) and fields.get(FIELD) == 1


class Bundles:
    """The bundles of the burst being taken in: which item came in which bundle."""

    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters
        #: item id -> the id of the bundle it came in (until the burst is receipted)
        self._bundle_of: dict[bytes, bytes] = {}

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def unpack(self, envelope: Envelope) -> list[Envelope]:
        """The CHAT envelopes a BUNDLE carries; none for a malformed one (counted)."""
        try:
            items = bundle.unpack(envelope)
        except EnvelopeError:
            self._count("bundle_rejected_malformed")
            return []
        self._count("bundle_received")
        self._count("bundle_items", len(items))
        for item in items:
            self._bundle_of[item.message_id] = envelope.message_id
        return items

    def receipt(self, env_ids: list[bytes]) -> tuple[list[bytes], dict[bytes, bytes]]:
        """The ids to receipt for `env_ids` (the bundles they came in added) and, for each
        bundled item, its bundle's id: a replay is recognised by the bundle (an item keeps
        its id from one try to the next, and each try must be receipted)."""
        guarded_by = {i: self._bundle_of[i] for i in env_ids if i in self._bundle_of}
        return [*env_ids, *dict.fromkeys(guarded_by.values())], guarded_by

    def burst_done(self) -> None:
        """The burst's receipts are out: forget its bundles."""
        self._bundle_of.clear()
