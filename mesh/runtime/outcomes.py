"""Waiting for a dial's outcome: `meshnotes connect` waits until the dial links or an
attempt fails, and the node wakes it when the transport says so."""

from __future__ import annotations

import asyncio

from mesh.runtime.dials import Dial, DialState


class DialOutcomes:
    """Who waits on which peer's dial."""

    def __init__(self) -> None:
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}

    async def wait(self, dial: Dial, timeout: float) -> None:
        """Return when `dial` links or fails an attempt, or after `timeout` s."""
        if dial.state is DialState.LINKED:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(dial.peer, [])
        waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass
        finally:
            if waiter in waiters:
                waiters.remove(waiter)

    def settled(self, peer: bytes) -> None:
        """The peer's dial linked, failed an attempt or gave up: wake who waits."""
        for waiter in self._waiters.pop(peer, []):
            if not waiter.done():
                waiter.set_result(None)
