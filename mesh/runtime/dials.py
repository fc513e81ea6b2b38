"""The addresses a node dials and where each dial stands (sans-I/O: `now` comes in).

One :class:`Dial` per peer key. Its states, and what moves it (the transport's
dial loop calls the methods of :class:`Dials`; nothing else changes a state)::

    state        on                                  next state
    connecting   linked()                            linked
    connecting   failed()                            waiting     (next try after a jittered backoff)
    connecting   failed(), out of attempts           given up    (learned addresses: 3 in a row)
    linked       lost()                              waiting
    waiting      attempting()                        connecting
    any          hold() (meshnotes disconnect)       held        (no redial until the hold ends)
    held         attempting() once the hold ended    connecting
    any          start() (meshnotes connect)         connecting  (hold and given-up cleared)
    any          forget() (meshnotes forget)         removed; automatic sources skip the peer

Sources: ``connect`` and ``peer`` (the user's own, dialed forever) and the
automatic ones (``address record``, ``lan``), which skip a peer that was
forgotten or is held.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from mesh.errors import UsageError
from mesh.runtime.dialfailure import DialFailure
from mesh.wire.address import PeerAddress
from mesh.wire.identity import encode_peer_id

#: the sources a user asked for: these clear a forget or a hold
EXPLICIT_SOURCES = frozenset({"connect", "peer", "invite", "config"})
#: how long ``meshnotes disconnect`` keeps a peer from being redialed
DISCONNECT_HOLD = 600.0
#: dials kept in the table at most (given-up ones go first)
MAX_DIALS = 256


class DialState(enum.StrEnum):
    CONNECTING = "connecting"
    LINKED = "linked"
    WAITING = "waiting"
    HELD = "held"
    GIVEN_UP = "given up"


@dataclass
class Dial:
    """One address being dialed: its state, attempts and the last failure in words."""

    address: PeerAddress
    source: str
    limit: int | None  # attempts in a row before giving up; None: forever
    state: DialState = DialState.CONNECTING
    attempts: int = 0  # since the dial started (or was restarted by connect)
    failures_in_row: int = 0
    last_error: DialFailure | None = None
    next_try: float | None = None  # when the next attempt is due
    held_until: float | None = None
    changed: float = 0.0
    #: the peer's other addresses (an invite names several): tried in turn after a failure
    others: list[PeerAddress] = field(default_factory=list)

    @property
    def peer(self) -> bytes:
        return self.address.peer_key

    @property
    def out_of_attempts(self) -> bool:
        return self.limit is not None and self.failures_in_row >= self.limit

    def status(self, now: float) -> dict[str, Any]:
        """This dial as ``status --json`` shows it."""
        due = self.held_until if self.state is DialState.HELD else self.next_try
        return {
            "address": str(self.address),
            "peer_id": encode_peer_id(self.peer),
            "source": self.source,
            "state": self.state.value,
            "attempts": self.attempts,
            "failures_in_row": self.failures_in_row,
            "last_error": self.last_error.words if self.last_error else None,
            "reason": self.last_error.reason.value if self.last_error else None,
            "next_try_in": (
                round(max(0.0, due - now), 1)
                if due is not None and self.state in (DialState.WAITING, DialState.HELD)
                else None
            ),
        }


class Dials:
    """Every dial of a node by peer key, and the peers the user told it to forget."""

    def __init__(self) -> None:
        self._dials: dict[bytes, Dial] = {}
        self.forgotten: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._dials)

    def get(self, peer: bytes) -> Dial | None:
        return self._dials.get(peer)

    def all(self) -> list[Dial]:
        return list(self._dials.values())

    def may_dial(self, peer: bytes, source: str, now: float) -> bool:
        """Whether `source` may (re)start dialing `peer`: automatic ones skip forgotten, held."""
        if source in EXPLICIT_SOURCES:
            return True
        dial = self._dials.get(peer)
        held = dial is not None and dial.held_until is not None and dial.held_until > now
        return peer not in self.forgotten and not held

    def start(self, address: PeerAddress, source: str, limit: int | None, now: float) -> Dial:
        """Begin dialing `address` (or restart its dial): clears a forget and a hold."""
        self.forgotten.discard(address.peer_key)
        dial = self._dials.get(address.peer_key)
        # a dial still trying its first address keeps it and tries the new one after a
        # failure there (an invite names several, best first); one that failed takes it now
        if (
            dial is not None
            and dial.address != address
            and dial.failures_in_row == 0
            and dial.state is not DialState.GIVEN_UP
        ):
            if address not in dial.others:
                dial.others.append(address)
            return dial
        moved = dial is not None and dial.address != address and dial.failures_in_row > 0
        if dial is None or moved or dial.state is DialState.GIVEN_UP:
            dial = Dial(address, source, limit, changed=now)
            self._dials.pop(address.peer_key, None)
            self._dials[address.peer_key] = dial
            self._bound()
        elif source in EXPLICIT_SOURCES:
            dial.source, dial.limit, dial.held_until = source, limit, None
        return dial

    def attempting(self, dial: Dial, now: float) -> None:
        dial.state = DialState.CONNECTING
        dial.attempts += 1
        dial.held_until = None
        dial.next_try = None
        dial.changed = now

    def linked(self, dial: Dial, now: float) -> None:
        dial.state = DialState.LINKED
        dial.failures_in_row = 0
        dial.last_error = None
        dial.changed = now

    def failed(self, dial: Dial, failure: DialFailure, next_try: float, now: float) -> bool:
        """An attempt failed: waiting until `next_try`, or given up (True) when out of attempts."""
        dial.failures_in_row += 1
        dial.last_error = failure
        dial.changed = now
        if dial.others:  # the next of the peer's addresses, the failed one last
            dial.others.append(dial.address)
            dial.address = dial.others.pop(0)
        if dial.out_of_attempts:
            dial.state = DialState.GIVEN_UP
            dial.next_try = None
            return True
        dial.state = DialState.WAITING
        dial.next_try = next_try
        return False

    def lost(self, dial: Dial, failure: DialFailure, next_try: float, now: float) -> None:
        """The dial's link went down: the next attempt is due at `next_try`."""
        dial.state = DialState.WAITING
        dial.last_error = failure
        dial.next_try = next_try
        dial.changed = now

    def hold(self, peer: bytes, until: float, now: float) -> Dial | None:
        """No redial of `peer` before `until` (meshnotes disconnect)."""
        dial = self._dials.get(peer)
        if dial is not None:
            dial.state = DialState.HELD
            dial.held_until = until
            dial.next_try = until
            dial.changed = now
        return dial

    def forget(self, peer: bytes) -> Dial | None:
        """Stop dialing `peer`; automatic sources skip it until an explicit dial."""
        self.forgotten.add(peer)
        return self._dials.pop(peer, None)

    def find(self, text: str) -> list[Dial]:
        """Dials matching an address (with or without its #PEERID) or a peer id prefix."""
        text = text.strip()
        exact = [d for d in self._dials.values() if text in (str(d.address), d.address.url)]
        if exact or not text:
            return exact
        lowered = text.lower()
        return [d for d in self._dials.values() if encode_peer_id(d.peer).startswith(lowered)]

    def one(self, text: str) -> Dial:
        """The one dial :meth:`find` matches; UsageError when none or several do."""
        matches = self.find(text)
        if len(matches) != 1:
            raise UsageError(
                f"no dial to {text!r} (meshnotes status lists the dials)"
                if not matches
                else f"{text!r} matches {len(matches)} dials; give the whole address"
            )
        return matches[0]

    def status(self, now: float) -> list[dict[str, Any]]:
        return [dial.status(now) for dial in self._dials.values()]

    def _bound(self) -> None:
        while len(self._dials) > MAX_DIALS:
            given_up = [p for p, d in self._dials.items() if d.state is DialState.GIVEN_UP]
            victim = given_up[0] if given_up else next(iter(self._dials))
            del self._dials[victim]
