"""Answers streamed on a link within its budget: to a neighbour's inventory, and its mail.

The pages come from the room log (:class:`~mesh.runtime.catchup.CatchUp`) or the
mailbox; each is sent handed on one more link. Between pages the event loop
runs; a page waits while the link's budget (mesh/runtime/answers.py) is spent or
its unsent bytes are above the backlog bound. One inventory answer runs per link
at a time; an inventory that comes meanwhile replaces the one waiting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from mesh.errors import StorageError
from mesh.routing.router import Router
from mesh.runtime.catchup import CatchUp, handed_on
from mesh.runtime.conn import Conn

log = logging.getLogger("meshnotes.node")


class AnswerStreams:
    """The answers a node streams to its neighbours."""

    def __init__(
        self,
        catch_up: CatchUp,
        router: Router,
        send: Callable[[Conn, bytes], None],
        spawn: Callable[[Awaitable[Any]], None],
        *,
        clock: Callable[[], float],
        max_backlog: int,
    ) -> None:
        self.catch_up = catch_up
        self.router = router
        self.send = send
        self.spawn = spawn
        self.clock = clock
        self.max_backlog = max_backlog

    def answer_inventory(self, conn: Conn, payload: bytes) -> None:
        """A neighbour listed what it holds: send it what it lacks, as we received it."""
        if self.catch_up.roomlog is None:
            return
        if conn.inventory is not None:
            self.router.count("inventory_coalesced")
        conn.inventory = payload
        if not conn.answering:
            conn.answering = True
            self.spawn(self._answer_inventories(conn))

    def hand_over(self, conn: Conn, pages: Iterator[list[bytes]]) -> None:
        """Stream the mail kept for the peer on `conn`."""
        self.spawn(self.stream(conn, pages, "mailbox_handed_over"))

    async def _answer_inventories(self, conn: Conn) -> None:
        try:
            while conn.inventory is not None and self.catch_up.roomlog is not None:
                payload, conn.inventory = conn.inventory, None
                started = time.perf_counter()
                try:
                    pages = self.catch_up.answer(payload, conn.sent)
                finally:  # reading the inventory is work done for the link too
                    conn.budget.charge(0, time.perf_counter() - started, self.clock())
                if pages is None:
                    continue
                if not await self.stream(conn, pages, "roomlog_sent"):
                    self.router.count("inventory_answered_empty")
                self.router.count("inventory_answered")
        finally:
            conn.answering = False

    async def stream(self, conn: Conn, pages: Iterator[list[bytes]], counter: str) -> int:
        """Send the pages of an answer on `conn`, within its budget; return envelopes sent."""
        sent = 0
        while True:
            wait = conn.budget.wait(self.clock())
            if wait > 0:
                self.router.count("answer_budget_waits")
                await asyncio.sleep(wait)
            while conn.link.backlog > self.max_backlog and not conn.closing:
                await asyncio.sleep(0.01)
            if conn.closing or not conn.is_open:
                return sent
            started = time.perf_counter()
            try:
                page = next(pages, None)
            except StorageError as exc:
                log.warning("cannot read an answer: %s", exc)
                return sent
            if page is None:
                return sent
            size = 0
            for data in page:
                self.send(conn, handed_on(data))
                size += len(data)
            conn.budget.charge(size, time.perf_counter() - started, self.clock())
            if page:
                self.router.count(counter, len(page))
                sent += len(page)
            await asyncio.sleep(0)
