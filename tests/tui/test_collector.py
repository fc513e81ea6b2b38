"""When the UI makes the collector's full passes (tui.collector): in a pause of the input, or
when one is overdue."""

from __future__ import annotations

from tui.collector import OVERDUE, PENDING, QUIET, IdleCollector


def test_a_pending_full_pass_waits_for_a_pause_in_the_input() -> None:
    collector = IdleCollector(now=0.0)
    typed = [i * 0.1 for i in range(1, 50)]  # a key every 0.1 s for about 5 s
    for at in typed:
        collector.input(at)
        assert not collector.due(at + 0.05, younger=PENDING + 5)  # mid-typing: not now
    assert collector.due(typed[-1] + QUIET, younger=PENDING + 5)  # the pause after it


def test_nothing_is_due_before_enough_younger_collections() -> None:
    collector = IdleCollector(now=0.0)
    assert not collector.due(1000.0, younger=PENDING - 1)
    assert collector.due(1000.0, younger=PENDING)


def test_an_overdue_pass_runs_even_while_the_user_types() -> None:
    collector = IdleCollector(now=0.0)
    at = 0.0
    while at < OVERDUE - 0.1:
        at += 0.1
        collector.input(at)
        if collector.due(at, younger=PENDING):
            break
    assert at >= OVERDUE - 0.2  # never before it is overdue
    collector.input(OVERDUE)
    assert collector.due(OVERDUE, younger=PENDING)
    collector.collected(OVERDUE)
    collector.input(OVERDUE + 1)
    assert not collector.due(OVERDUE + 1, younger=PENDING)  # counted from the last pass
