"""Tests for mesh.routing.pacer: a node coming back on several links asks for its backlog once."""

from __future__ import annotations

from mesh.routing.pacer import InventoryPacer


def test_the_first_link_gets_the_inventory_at_once_and_the_others_after_the_wait() -> None:
    pacer = InventoryPacer(wait=1.0)
    assert pacer.next_deadline() == float("inf")
    assert pacer.link_up(1, 10.0) is True
    assert pacer.link_up(2, 10.0) is False
    assert pacer.link_up(3, 10.5) is False
    assert pacer.next_deadline() == 11.0
    assert pacer.flush() == [2, 3]
    assert pacer.flush() == []
    assert pacer.next_deadline() == float("inf")


def test_a_link_after_the_wait_gets_it_at_once_and_opens_a_new_wait() -> None:
    pacer = InventoryPacer(wait=1.0)
    assert pacer.link_up(1, 10.0)
    assert pacer.link_up(2, 11.0)  # the first answer had its second
    assert not pacer.link_up(3, 11.2)
    assert pacer.next_deadline() == 12.0


def test_a_link_that_went_down_while_waiting_is_not_handed_out() -> None:
    pacer = InventoryPacer(wait=1.0)
    pacer.link_up(1, 0.0)
    pacer.link_up(2, 0.1)
    pacer.link_up(3, 0.2)
    pacer.link_down(2)
    pacer.link_down(9)  # unknown: nothing happens
    assert pacer.flush() == [3]
