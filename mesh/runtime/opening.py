"""Opening a link's websocket messages in worker threads, in the order they came.

A large message is opened (box-stream, then frames) in a worker thread, and the
signatures and ids of the frames it holds are found there too, so that the
event loop only routes. Two workers may hold two messages of one link at once:
:class:`InOrder` gives each a ticket when it is read and lets it open only after
the one read before it, while checking signatures needs no turn. A job waits
only for a job taken from the queue before it (the pool is first in, first
out), so that one is already running: no deadlock, whatever the links. A job
cancelled before it ran (its link went down, or the node stopped) never takes its
turn: the link then closes its turns, and the jobs waiting for one give up
(:meth:`InOrder.close`) instead of holding a worker forever.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from mesh.errors import ProtocolError
from mesh.runtime.signatures import Checked, check_and_hash, left_to_the_router, worth_a_worker
from mesh.wire.link import Link


@dataclass(frozen=True, slots=True)
class Opened:
    """The frames of one websocket message, and what the worker found about them."""

    frames: list[bytes]
    checked: Checked
    in_worker: bool  # signatures checked (and ids hashed) in the worker


class InOrder:
    """Turns of one link's open jobs: each opens after the one read before it."""

    def __init__(self) -> None:
        self._turn = threading.Condition()
        self._issued = 0  # tickets given (event loop only)
        self._opened = 0  # jobs past their turn (any thread, under the condition)
        self._closed = False  # the link is down: no turn will come any more

    @property
    def pending(self) -> int:
        """Jobs given a ticket that have not opened yet (read on the event loop)."""
        return self._issued - self._opened

    def ticket(self) -> int:
        ticket = self._issued
        self._issued += 1
        return ticket

    def close(self) -> None:
        """The link is down: jobs waiting for a turn give up (a job before them may have
        been cancelled before it ran, and its turn would never come)."""
        with self._turn:
            self._closed = True
            self._turn.notify_all()

    def open(self, ticket: int, link: Link, data: bytes, now: float) -> Opened:
        """In a worker: open `data` at the ticket's turn, then check what it holds."""
        with self._turn:
            self._turn.wait_for(lambda: self._opened == ticket or self._closed)
            if self._opened != ticket:
                raise ProtocolError("the link went down before this message's turn")
        try:
            frames = link.receive_data(data, now)
        finally:
            with self._turn:
                self._opened += 1
                self._turn.notify_all()
        if not worth_a_worker(frames):
            return Opened(frames, left_to_the_router(frames), False)
        return Opened(frames, check_and_hash(frames), True)


async def opened_later(frames: list[bytes], checking: asyncio.Future[Checked]) -> Opened:
    """Frames opened on the event loop, once their signatures are checked in the workers."""
    return Opened(frames, await checking, False)


def ignore_outcome(future: asyncio.Future[Opened]) -> None:
    """A done-callback for a job no one will await: its error is read, so never logged."""
    if not future.cancelled():
        future.exception()
