"""Pings: a signed PING to a peer, answered by a PONG naming it; the round trip measured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from mesh.routing.router import Router
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType


@dataclass(frozen=True)
class PingReply:
    rtt_ms: float
    hops: int


def pong_for(router: Router, ping: Envelope, now: float) -> Envelope:
    """Our answer to a PING: a PONG to its author naming the ping's message id."""
    return router.make(
        EnvelopeType.PONG, now, dest_kind=DestKind.PEER, dest=ping.author, payload=ping.message_id
    )


class Pings:
    """The pings this node sent and awaits a PONG for, by message id."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, tuple[asyncio.Future[PingReply], float]] = {}

    async def send(
        self, ping: Envelope, send: Callable[[Envelope], None], timeout: float
    ) -> PingReply | None:
        """Send `ping` with `send`; return its reply, or None after `timeout` seconds."""
        future: asyncio.Future[PingReply] = asyncio.get_running_loop().create_future()
        self._waiting[ping.message_id] = (future, time.perf_counter())
        try:
            send(ping)
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return None
        finally:
            self._waiting.pop(ping.message_id, None)

    def pong(self, pong: Envelope) -> None:
        """A PONG arrived: the ping it names, if awaited, has its reply."""
        entry = self._waiting.get(pong.payload)
        if entry is not None and not entry[0].done():
            rtt = (time.perf_counter() - entry[1]) * 1000
            entry[0].set_result(PingReply(round(rtt, 3), pong.hops + 1))

    def cancel(self) -> None:
        for future, _ in self._waiting.values():
            future.cancel()
