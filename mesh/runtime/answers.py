"""Answers to a neighbour's free requests, within a budget of bytes and loop time per link.

A neighbour's INVENTORY costs it one small frame and can ask for a room's
whole log; a link coming up costs it a handshake and gets the mail kept for
its peer. Such answers are streamed: the node reads them in bounded pages
(mesh/storage/roomlog.py) and yields to its event loop between pages, so nothing else
waits long behind one. Each link has an :class:`AnswerBudget`: bytes per
second and seconds of loop time per second, each with a burst. A page is
charged after it is read (what it cost, measured); while either is spent, the
link's next page waits for the refill. One answer runs per link at a time; an
inventory that arrives meanwhile replaces any other still waiting (the latest
says most), and what the link was sent is remembered so that the same request
repeated is answered with what is new only.

Free requests are not all a link's answers cost: the chunks of attachments a
node serves to members behind it (chat/files/serving.py) cost bytes and loop
time too. So a link has two budgets (:class:`LinkBudget`): free requests'
answers spend their own (:class:`AnswerLimits`) and the link's **total**
(:data:`TOTAL`), chunks spend the total only. A file at full speed fits in the
total; a neighbour's inventories keep their stricter share of it; and
inventories and chunk requests together cannot cost more than the total.

Sans-I/O: the node passes `now` in and sleeps for :meth:`AnswerBudget.wait`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnswerLimits:
    """The budget of one link's answers (see the module docstring)."""

    bytes_per_s: float = 4 * 1024 * 1024
    bytes_burst: float = 16 * 1024 * 1024
    cpu_per_s: float = 0.1  # seconds of event-loop time per second: a tenth of a core
    cpu_burst: float = 0.25
    #: the link's unsent bytes must fall below this before the next page is read
    max_backlog: int = 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.bytes_per_s, self.bytes_burst, self.cpu_per_s, self.cpu_burst) <= 0:
            raise ValueError("answer limits must be positive")


class AnswerBudget:
    """The bytes and loop time one link's answers may still spend; both refill over time."""

    def __init__(self, limits: AnswerLimits, now: float) -> None:
        self.limits = limits
        self._bytes = limits.bytes_burst
        self._cpu = limits.cpu_burst
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            elapsed = now - self._updated
            limits = self.limits
            self._bytes = min(limits.bytes_burst, self._bytes + elapsed * limits.bytes_per_s)
            self._cpu = min(limits.cpu_burst, self._cpu + elapsed * limits.cpu_per_s)
            self._updated = now

    def charge(self, sent: int, cpu: float, now: float) -> None:
        """A page of `sent` bytes that took `cpu` seconds to read (the budget may go below 0)."""
        self._refill(now)
        self._bytes -= sent
        self._cpu -= cpu

    def wait(self, now: float) -> float:
        """Seconds until both budgets are positive again (0 when they are now)."""
        self._refill(now)
        limits = self.limits
        return max(
            0.0,
            -self._bytes / limits.bytes_per_s if self._bytes < 0 else 0.0,
            -self._cpu / limits.cpu_per_s if self._cpu < 0 else 0.0,
        )


#: what all of a link's answers together may cost: free requests' and attachments' chunks
#: (room for a file at the speed a node sends one: about 1 ms of loop time per 64 KiB chunk)
TOTAL = AnswerLimits(
    bytes_per_s=32 * 1024 * 1024, bytes_burst=64 * 1024 * 1024, cpu_per_s=0.5, cpu_burst=1.0
)


class LinkBudget:
    """One link's budgets: its free requests' own, and the total of all its answers.

    :meth:`wait` and :meth:`charge` are the free requests' (they spend both);
    :meth:`wait_total` and :meth:`charge_total` are other answers' (the total only).
    """

    def __init__(self, limits: AnswerLimits, now: float, total: AnswerLimits = TOTAL) -> None:
        self.free = AnswerBudget(limits, now)
        self.total = AnswerBudget(total, now)
        self.limits = limits

    def charge(self, sent: int, cpu: float, now: float) -> None:
        self.free.charge(sent, cpu, now)
        self.total.charge(sent, cpu, now)

    def wait(self, now: float) -> float:
        return max(self.free.wait(now), self.total.wait(now))

    def charge_total(self, sent: int, cpu: float, now: float) -> None:
        self.total.charge(sent, cpu, now)

    def wait_total(self, now: float) -> float:
        return self.total.wait(now)
