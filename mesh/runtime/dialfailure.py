"""Why a dial failed, in words, from what the dialing side observed (sans-I/O).

The far side of a failed handshake says nothing: a listener whose network key
differs drops the hello unanswered, and one whose key is not the pinned
``#PEERID`` cannot open the dialer's proof and hangs up. So the dialer judges
from how far it got. The transport describes each failed attempt as an
:class:`Observation` (socket errno, timeout, HTTP status, handshake messages
answered, close code); :func:`classify` turns it into a :class:`DialFailure`:
a short reason to count and show, and one sentence for the person reading it.

    stage        observed                              reason
    connect      errno ECONNREFUSED                    refused
    connect      errno EHOSTUNREACH, ENETUNREACH, ...  unreachable host
    connect      name resolution failed                unknown host
    connect      timeout                               timed out
    upgrade      HTTP status / not HTTP / TLS          HTTP error / TLS error
    handshake    close code 1013                       busy
    handshake    no answer to the hello (closed, late) wrong network key
    handshake    hello answered, then closed / late    wrong peer key
    handshake    answer failed its check (step n)      wrong network key (n=1), wrong peer key (n=2)
"""

from __future__ import annotations

import enum
import errno as errnos
from dataclasses import dataclass


class Stage(enum.Enum):
    """How far one attempt went before it failed."""

    CONNECT = "connect"  # the TCP connection
    UPGRADE = "upgrade"  # the websocket's HTTP upgrade (and TLS, were there any)
    HANDSHAKE = "handshake"  # the secret handshake


class Reason(enum.StrEnum):
    """The short name of a failure (shown in ``status --json`` as ``reason``)."""

    REFUSED = "refused"
    UNREACHABLE = "unreachable host"
    UNKNOWN_HOST = "unknown host"
    TIMED_OUT = "timed out"
    HTTP = "HTTP error"
    TLS = "TLS error"
    BUSY = "busy"
    WRONG_NETWORK_KEY = "wrong network key"
    WRONG_PEER_KEY = "wrong peer key"
    LINK_LOST = "link lost"
    OTHER = "error"


@dataclass(frozen=True)
class Observation:
    """What the dialer saw of one failed attempt, in plain terms (no library objects).

    `handshake_received` counts the peer's handshake messages that passed their
    checks; `handshake_rejected` says the next one failed its check.
    """

    stage: Stage
    errno: int | None = None
    unknown_host: bool = False
    timed_out: bool = False
    http_status: int | None = None
    tls: bool = False
    close_code: int | None = None
    handshake_received: int = 0
    handshake_rejected: bool = False
    detail: str = ""


@dataclass(frozen=True)
class DialFailure:
    """Why an attempt failed: `reason` to count by, `words` for the person reading."""

    reason: Reason
    words: str


_UNREACHABLE = {
    errnos.EHOSTUNREACH,
    errnos.ENETUNREACH,
    errnos.EHOSTDOWN,
    errnos.ENETDOWN,
    errnos.EADDRNOTAVAIL,
}
_TIMEOUT_ERRNOS = {errnos.ETIMEDOUT}
_BUSY = 1013


def classify(seen: Observation) -> DialFailure:
    """The reason and the sentence for one failed attempt."""
    if seen.stage is Stage.CONNECT:
        return _connect(seen)
    if seen.stage is Stage.UPGRADE:
        if seen.tls:
            detail = seen.detail or "the TLS handshake failed"
            return DialFailure(Reason.TLS, f"TLS error: {detail}")
        if seen.timed_out:
            return DialFailure(Reason.TIMED_OUT, "timed out: no websocket answer in time")
        if seen.http_status is not None:
            return DialFailure(
                Reason.HTTP,
                f"HTTP error: the server answered {seen.http_status}, not a meshnotes node?",
            )
        return DialFailure(
            Reason.HTTP,
            "HTTP error: no websocket at that address, not a meshnotes node?"
            + (f" ({seen.detail})" if seen.detail else ""),
        )
    return _handshake(seen)


def _connect(seen: Observation) -> DialFailure:
    if seen.unknown_host:
        return DialFailure(Reason.UNKNOWN_HOST, "unknown host: the name does not resolve")
    if seen.errno == errnos.ECONNREFUSED:
        return DialFailure(Reason.REFUSED, "refused: nothing listens at that address")
    if seen.errno in _UNREACHABLE:
        return DialFailure(Reason.UNREACHABLE, "unreachable host: no route to it")
    if seen.timed_out or seen.errno in _TIMEOUT_ERRNOS:
        return DialFailure(Reason.TIMED_OUT, "timed out: the host did not answer")
    if seen.errno == errnos.ECONNRESET:
        return DialFailure(Reason.REFUSED, "refused: the connection was reset")
    detail = seen.detail or (errnos.errorcode.get(seen.errno, "") if seen.errno else "")
    return DialFailure(Reason.OTHER, f"error: {detail or 'the connection failed'}")


def _handshake(seen: Observation) -> DialFailure:
    if seen.close_code == _BUSY:
        return DialFailure(Reason.BUSY, "busy: the peer has too many handshakes pending")
    if seen.handshake_rejected:
        if seen.handshake_received == 0:
            return DialFailure(
                Reason.WRONG_NETWORK_KEY,
                "wrong network key: the peer's answer is made with another mesh key",
            )
        return DialFailure(
            Reason.WRONG_PEER_KEY,
            "wrong peer key: the node there cannot prove it holds the pinned #PEERID",
        )
    if seen.handshake_received == 0:
        late = "in time" if seen.timed_out else "before hanging up"
        return DialFailure(
            Reason.WRONG_NETWORK_KEY,
            f"no answer to the handshake {late}: wrong network key?",
        )
    if seen.handshake_received == 1:
        return DialFailure(
            Reason.WRONG_PEER_KEY,
            "wrong peer key: the node there refused our proof, so it is not the pinned #PEERID",
        )
    return DialFailure(Reason.LINK_LOST, "link lost during the handshake")


#: what a dial shows after its link went down (not a failure of the dial)
LINK_LOST = DialFailure(Reason.LINK_LOST, "link lost: redialing")
