"""A link's answer budgets: free requests' own share, and the total all answers spend."""

from __future__ import annotations

import pytest

from mesh.runtime.answers import TOTAL, AnswerLimits, LinkBudget

FREE = AnswerLimits(bytes_per_s=100.0, bytes_burst=200.0, cpu_per_s=0.1, cpu_burst=0.2)
ALL = AnswerLimits(bytes_per_s=1000.0, bytes_burst=1000.0, cpu_per_s=0.5, cpu_burst=0.5)


def test_free_requests_spend_their_share_and_the_total_other_answers_the_total_only() -> None:
    budget = LinkBudget(FREE, now=0.0, total=ALL)
    budget.charge_total(900, 0.0, now=0.0)  # a file's chunks
    assert budget.free.wait(0.0) == 0.0 and budget.wait_total(0.0) == 0.0
    budget.charge(300, 0.0, now=0.0)  # an inventory's page: past its share of 200
    assert budget.wait(0.0) == pytest.approx(1.0)  # its share refills at 100 B/s
    assert budget.wait_total(0.0) == pytest.approx(0.2)  # 200 over the total, at 1000 B/s
    # the total binds free requests too: chunks spend it, and the next page waits for it
    budget = LinkBudget(FREE, now=0.0, total=ALL)
    budget.charge_total(1000, 0.6, now=0.0)
    assert budget.free.wait(0.0) == 0.0
    assert budget.wait(0.0) == pytest.approx(0.2)  # 0.1 s of loop time over, at 0.5 s/s
    assert budget.wait(0.2) == 0.0


def test_the_total_leaves_room_for_a_file_above_the_free_requests_share() -> None:
    free = AnswerLimits()
    assert TOTAL.bytes_per_s > free.bytes_per_s and TOTAL.cpu_per_s > free.cpu_per_s
    assert TOTAL.bytes_burst >= free.bytes_burst and TOTAL.cpu_burst >= free.cpu_burst
